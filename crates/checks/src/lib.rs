pub const KINDS: &[&dyn nodecheck_core::kind::Kind] = &[];
