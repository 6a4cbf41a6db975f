// STUB
pub struct TerminalReporter;
pub struct TerminalOptions;
