// STUB
pub struct JunitReporter;
