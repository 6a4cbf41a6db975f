//! Text from an image, a profile or a program, quoted in a message.
//!
//! A message that echoes a line of input must stay a message: a hostile
//! file with a 50 MB line once made a 100 MB error. Every such quote goes
//! through [`clip`].

use std::borrow::Cow;

/// The most characters of input a message quotes by default.
pub const QUOTE_MAX: usize = 200;

/// `text` when it has at most `max` characters; else its first `max`
/// characters, an ellipsis and how long the whole was.
///
/// ```
/// use nodecheck_core::text::clip;
///
/// assert_eq!(clip("short", 10), "short");
/// assert_eq!(clip(&"x".repeat(50), 4), "xxxx… (50 bytes in all)");
/// ```
pub fn clip(text: &str, max: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max) {
        None => Cow::Borrowed(text),
        Some((cut, _)) => Cow::Owned(format!("{}… ({} bytes in all)", &text[..cut], text.len())),
    }
}

/// `bytes` as lower-case hexadecimal, two digits a byte: how digests
/// (sha256, md5, an OCI manifest's) and binary xattr values are written.
///
/// ```
/// assert_eq!(nodecheck_core::text::hex(&[0x00, 0xab, 0x7f]), "00ab7f");
/// ```
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_on_character_boundaries() {
        assert_eq!(clip("ééé", 3), "ééé");
        assert_eq!(clip("éééé", 2), "éé… (8 bytes in all)");
        assert_eq!(clip("", 0), "");
        assert_eq!(clip("a", 0), "… (1 bytes in all)");
    }
}
