// STUB
/// Writes a file atomically.
pub fn write_atomically(
    _path: &std::path::Path,
    _write: &mut dyn FnMut(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    todo!()
}
