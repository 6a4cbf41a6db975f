// STUB
pub struct JsonReporter;
