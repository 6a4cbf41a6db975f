//! The BerkeleyDB `Packages` file of rpm ≤ 4.16 (RHEL 7 and 8, Rocky and
//! Alma 8), read without libdb: a Berkeley DB *hash* database whose
//! values are rpm header blobs (keyed by instance number).
//!
//! Layout (libdb's db_page.h): page 0 is the hash metadata page (magic
//! 0x061561 at byte 12, page size at 20, last page number at 32, in the
//! byte order of the machine that wrote it). Every page starts with a
//! 26-byte header (`next_pgno` at 16, `entries` at 20, `hf_offset` at 22,
//! type at 25). Hash pages (type 2 or 13) hold `entries` 2-byte offsets to
//! key/data items: `H_KEYDATA` (1) items are inline, `H_OFFPAGE` (3) items
//! name the first of a chain of overflow pages (type 7) holding
//! `hf_offset` bytes each.

use super::Pkg;
use super::rpm;

const HASH_MAGIC: u32 = 0x0006_1561;
const PAGE_HEADER: usize = 26;
const P_HASH_UNSORTED: u8 = 2;
const P_OVERFLOW: u8 = 7;
const P_HASHMETA: u8 = 8;
const P_HASH: u8 = 13;
const H_KEYDATA: u8 = 1;
const H_OFFPAGE: u8 = 3;

/// Every package in a `Packages` file.
pub fn packages(path: &str, db: &[u8]) -> Result<Vec<Pkg>, String> {
    rpm::packages(path, blobs(path, db)?)
}

/// The header blobs of a `Packages` file, each with the page it is on.
pub fn blobs(path: &str, db: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let fail = |what: String| format!("{path}: {what}");
    if db.len() < 512 {
        return Err(fail("not a Berkeley DB file (too short)".into()));
    }
    let raw = |at: usize| [db[at], db[at + 1], db[at + 2], db[at + 3]];
    let big = match (u32::from_le_bytes(raw(12)), u32::from_be_bytes(raw(12))) {
        (HASH_MAGIC, _) => false,
        (_, HASH_MAGIC) => true,
        _ => return Err(fail("not a Berkeley DB hash database (bad magic)".into())),
    };
    let r = Reader { db, big };
    if db[25] != P_HASHMETA {
        return Err(fail(format!(
            "page 0 has type {}, expected hash metadata",
            db[25]
        )));
    }
    let page_size = r.u32(20) as usize;
    if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
        return Err(fail(format!("implausible page size {page_size}")));
    }
    let pages = db.len() / page_size;
    let mut out = Vec::new();
    for pgno in 1..pages {
        let page = &db[pgno * page_size..(pgno + 1) * page_size];
        if page[25] != P_HASH && page[25] != P_HASH_UNSORTED {
            continue;
        }
        let entries = r.u16_in(page, 20) as usize;
        if PAGE_HEADER + 2 * entries > page_size {
            return Err(fail(format!(
                "page {pgno}: {entries} entries do not fit the page"
            )));
        }
        let offsets: Vec<usize> = (0..entries)
            .map(|i| r.u16_in(page, PAGE_HEADER + 2 * i) as usize)
            .collect();
        // Items are key, data, key, data…; an item ends where the one
        // before it in the index begins (they are stacked from the end).
        for i in (1..entries).step_by(2) {
            let start = offsets[i];
            let end = offsets[i - 1];
            if start >= page_size || end > page_size || start >= end {
                return Err(fail(format!("page {pgno}: item {i} has bad bounds")));
            }
            let item = &page[start..end];
            let value = match item[0] {
                H_KEYDATA => item[1..].to_vec(),
                H_OFFPAGE if item.len() >= 12 => {
                    let first = r.u32_in(item, 4) as usize;
                    let total = r.u32_in(item, 8) as usize;
                    r.overflow(first, total, page_size, pages)
                        .map_err(|e| fail(format!("page {pgno}: {e}")))?
                }
                other => {
                    return Err(fail(format!("page {pgno}: unsupported item type {other}")));
                }
            };
            // Instance 0 holds rpm's next-instance counter, not a header.
            if value.len() <= 8 {
                continue;
            }
            out.push((format!("page {pgno}"), value));
        }
    }
    Ok(out)
}

struct Reader<'a> {
    db: &'a [u8],
    big: bool,
}

impl Reader<'_> {
    fn u32(&self, at: usize) -> u32 {
        self.u32_in(self.db, at)
    }

    fn u32_in(&self, b: &[u8], at: usize) -> u32 {
        let a = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if self.big {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        }
    }

    fn u16_in(&self, b: &[u8], at: usize) -> u16 {
        let a = [b[at], b[at + 1]];
        if self.big {
            u16::from_be_bytes(a)
        } else {
            u16::from_le_bytes(a)
        }
    }

    /// The `total` bytes of a chain of overflow pages starting at `first`.
    fn overflow(
        &self,
        first: usize,
        total: usize,
        page_size: usize,
        pages: usize,
    ) -> Result<Vec<u8>, String> {
        if total > 256 << 20 {
            return Err(format!("overflow item of {total} bytes is not plausible"));
        }
        let mut out = Vec::with_capacity(total);
        let mut pgno = first;
        let mut hops = 0;
        while out.len() < total {
            if pgno == 0 || pgno >= pages || hops > pages {
                return Err(format!(
                    "overflow chain leads to page {pgno}, outside the file"
                ));
            }
            hops += 1;
            let page = &self.db[pgno * page_size..(pgno + 1) * page_size];
            if page[25] != P_OVERFLOW {
                return Err(format!(
                    "page {pgno} has type {}, expected overflow",
                    page[25]
                ));
            }
            let len = self.u16_in(page, 22) as usize;
            if PAGE_HEADER + len > page_size {
                return Err(format!("overflow page {pgno} claims {len} bytes"));
            }
            let take = len.min(total - out.len());
            out.extend_from_slice(&page[PAGE_HEADER..PAGE_HEADER + take]);
            pgno = self.u32_in(page, 16) as usize;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Packages file written by Berkeley DB 5.3's own db_load (see
    /// testdata/README.md): instance 0 holds the counter, 1 a small header
    /// stored inline, 2 a header of 9 KB spread over overflow pages, 3 a
    /// gpg-pubkey.
    const PACKAGES: &[u8] = include_bytes!("testdata/Packages");

    #[test]
    fn reads_inline_and_overflow_headers() {
        let p = packages("/var/lib/rpm/Packages", PACKAGES).unwrap();
        let got: Vec<(&str, &str)> = p
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got.contains(&("bash", "4.4.20-4.el8")), "{got:?}");
        assert!(got.contains(&("munge", "0.5.13-2.el8")), "{got:?}");
    }

    #[test]
    fn corrupt_files_are_errors_naming_the_file() {
        let e = packages("/var/lib/rpm/Packages", b"junk").unwrap_err();
        assert_eq!(
            e,
            "/var/lib/rpm/Packages: not a Berkeley DB file (too short)"
        );
        let e = packages("/var/lib/rpm/Packages", &[0u8; 4096]).unwrap_err();
        assert!(e.contains("bad magic"), "{e}");
        // Every byte after the metadata page scrambled: an error, no panic.
        let mut bad = PACKAGES.to_vec();
        for (i, b) in bad.iter_mut().enumerate().skip(4096) {
            *b = (i * 7 % 251) as u8;
        }
        let _ = packages("/p", &bad);
        // Truncated in the middle of an overflow chain.
        let cut = &PACKAGES[..PACKAGES.len() - 4096];
        if let Err(e) = packages("/p", cut) {
            assert!(e.starts_with("/p: "), "{e}");
        }
        for len in (0..PACKAGES.len()).step_by(97) {
            let _ = packages("/p", &PACKAGES[..len]);
        }
    }
}
