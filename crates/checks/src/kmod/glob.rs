//! `fnmatch(3)` without flags, as kmod matches the patterns of
//! `modules.alias` (`pci:v000015B3d0000101[79]sv*sd*bc*sc*i*`): `*`, `?`
//! and `[...]` classes with ranges and `!`/`^` negation. Matching
//! backtracks only to the last `*`, so a hostile pattern of many stars
//! costs O(pattern × text), never exponential time.

/// Whether `text` matches `pattern`.
pub fn matches(pattern: &str, text: &str) -> bool {
    let p = pattern.as_bytes();
    let t = text.as_bytes();
    let (mut pi, mut ti) = (0, 0);
    // Where to resume after the last `*`: pattern after the star, and the
    // text position the star currently swallows up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        let step = match p.get(pi) {
            Some(b'*') => {
                star = Some((pi + 1, ti));
                pi += 1;
                continue;
            }
            Some(b'?') => Some(1),
            Some(b'[') => class(&p[pi..], t[ti]).map(|(ok, len)| if ok { len } else { 0 }),
            Some(&c) => Some(usize::from(c == t[ti])),
            None => Some(0),
        };
        match step {
            Some(n) if n > 0 => {
                pi += n;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Matches byte `c` against the class at the start of `p` (which starts
/// with `[`): whether it matched and the class's length in the pattern.
/// `None` when the class is not closed (fnmatch then treats `[` as a
/// literal).
fn class(p: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(p.get(i), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    loop {
        let lo = *p.get(i)?;
        if lo == b']' && !first {
            i += 1;
            break;
        }
        first = false;
        if p.get(i + 1) == Some(&b'-') && p.get(i + 2).is_some_and(|&h| h != b']') {
            let hi = p[i + 2];
            hit |= lo <= c && c <= hi;
            i += 3;
        } else {
            hit |= lo == c;
            i += 1;
        }
    }
    Some((hit != negate, i))
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn fnmatch_like() {
        assert!(matches("fs-nfs4", "fs-nfs4"));
        assert!(!matches("fs-nfs4", "fs-nfs"));
        assert!(matches(
            "pci:v000015B3d0000101[79]sv*",
            "pci:v000015B3d00001017sv0000"
        ));
        assert!(!matches(
            "pci:v000015B3d0000101[79]sv*",
            "pci:v000015B3d00001018sv0000"
        ));
        assert!(matches("net-pf-[0-9]", "net-pf-7"));
        assert!(matches("x[!a-c]y", "xdy"));
        assert!(!matches("x[!a-c]y", "xby"));
        assert!(matches("a?c", "abc"));
        assert!(matches("*", ""));
        assert!(matches("a*b*c", "aXXbYYc"));
        assert!(!matches("a*b*c", "aXXbYY"));
        assert!(matches("[]]", "]"));
        // An unclosed class never matches the byte (and never panics).
        assert!(!matches("a[bc", "ab"));
    }

    #[test]
    fn many_stars_stay_fast() {
        let pattern = "*a".repeat(200) + "b";
        let text = "a".repeat(5000);
        assert!(!matches(&pattern, &text));
    }
}
