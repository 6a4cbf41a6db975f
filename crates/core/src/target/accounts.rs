//! Users and groups from the target's own /etc/passwd and /etc/group.
//!
//! Never the host's NSS: on a rootfs, `owner = "munge"` means the munge of
//! the image, whatever uid the build host gives that name.

use std::io;

/// A user from /etc/passwd.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub gecos: String,
    pub home: String,
    pub shell: String,
}

/// A group from /etc/group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

/// The target's accounts, parsed once per run.
#[derive(Clone, Debug, Default)]
pub struct Accounts {
    pub users: Vec<User>,
    pub groups: Vec<Group>,
    /// Problems met while reading: an unreadable file, a malformed line
    /// (`/etc/passwd:3: expected 7 colon-separated fields, got 2`). Checks
    /// that look accounts up report these as errors instead of guessing.
    pub errors: Vec<String>,
}

impl Accounts {
    /// Parses the contents of /etc/passwd and /etc/group as read from the
    /// target (a read error is recorded, not fatal: a minimal image may
    /// lack /etc/group).
    pub fn parse(passwd: io::Result<Vec<u8>>, group: io::Result<Vec<u8>>) -> Accounts {
        let mut a = Accounts::default();
        match passwd {
            Ok(bytes) => parse_lines("/etc/passwd", &bytes, 7, &mut a.errors, |f| {
                a.users.push(User {
                    name: f[0].to_string(),
                    uid: id(f[2])?,
                    gid: id(f[3])?,
                    gecos: f[4].to_string(),
                    home: f[5].to_string(),
                    shell: f[6].to_string(),
                });
                Ok(())
            }),
            Err(e) => a.errors.push(format!("/etc/passwd: {e}")),
        }
        match group {
            Ok(bytes) => parse_lines("/etc/group", &bytes, 4, &mut a.errors, |f| {
                a.groups.push(Group {
                    name: f[0].to_string(),
                    gid: id(f[2])?,
                    members: f[3]
                        .split(',')
                        .filter(|m| !m.is_empty())
                        .map(str::to_string)
                        .collect(),
                });
                Ok(())
            }),
            Err(e) => a.errors.push(format!("/etc/group: {e}")),
        }
        a
    }

    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }

    pub fn user_by_uid(&self, uid: u32) -> Option<&User> {
        self.users.iter().find(|u| u.uid == uid)
    }

    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name == name)
    }

    pub fn group_by_gid(&self, gid: u32) -> Option<&Group> {
        self.groups.iter().find(|g| g.gid == gid)
    }

    /// Names of the groups `user` belongs to: its primary group and every
    /// group that lists it as a member.
    pub fn groups_of(&self, user: &User) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        if let Some(g) = self.group_by_gid(user.gid) {
            out.push(g.name.clone());
        }
        for g in &self.groups {
            if g.members.contains(&user.name) && !out.contains(&g.name) {
                out.push(g.name.clone());
            }
        }
        out
    }

    /// The name for a uid, or the number when the image has no such user.
    pub fn user_name(&self, uid: u32) -> String {
        self.user_by_uid(uid)
            .map_or_else(|| uid.to_string(), |u| u.name.clone())
    }

    /// The name for a gid, or the number when the image has no such group.
    pub fn group_name(&self, gid: u32) -> String {
        self.group_by_gid(gid)
            .map_or_else(|| gid.to_string(), |g| g.name.clone())
    }
}

fn id(s: &str) -> Result<u32, String> {
    s.parse()
        .map_err(|_| format!("expected a numeric id, got {s:?}"))
}

fn parse_lines(
    file: &str,
    bytes: &[u8],
    fields: usize,
    errors: &mut Vec<String>,
    mut add: impl FnMut(&[&str]) -> Result<(), String>,
) {
    let text = String::from_utf8_lossy(bytes);
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        // NIS compat entries (+user, -user, +) carry no data of their own.
        if line.is_empty() || line.starts_with('#') || line.starts_with(['+', '-']) {
            continue;
        }
        let f: Vec<&str> = line.split(':').collect();
        let result = if f.len() != fields {
            Err(format!(
                "expected {fields} colon-separated fields, got {}",
                f.len()
            ))
        } else if f[0].is_empty() {
            Err("empty name".to_string())
        } else {
            add(&f)
        };
        if let Err(e) = result {
            errors.push(format!("{file}:{}: {e}", n + 1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
        munge:x:101:102::/nonexistent:/usr/sbin/nologin\n\
        alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash\n";
    const GROUP: &str = "root:x:0:\nmunge:x:102:\nusers:x:100:alice,bob\nalice:x:1000:\n";

    fn accounts() -> Accounts {
        Accounts::parse(Ok(PASSWD.into()), Ok(GROUP.into()))
    }

    #[test]
    fn parses_users_and_groups() {
        let a = accounts();
        assert!(a.errors.is_empty(), "{:?}", a.errors);
        assert_eq!(a.user("munge").unwrap().uid, 101);
        assert_eq!(a.user_name(0), "root");
        assert_eq!(a.user_name(4242), "4242");
        assert_eq!(a.group_name(102), "munge");
        let alice = a.user("alice").unwrap();
        assert_eq!(a.groups_of(alice), vec!["alice", "users"]);
    }

    #[test]
    fn garbage_lines_are_errors_with_line_numbers() {
        let a = Accounts::parse(
            Ok(
                b"root:x:0:0:root:/root:/bin/bash\n\xff\xfegarbage\nbad:x:zero:0::/:/bin/sh\n"
                    .to_vec(),
            ),
            Err(io::Error::from(io::ErrorKind::NotFound)),
        );
        assert_eq!(a.users.len(), 1);
        assert_eq!(a.errors.len(), 3, "{:?}", a.errors);
        assert!(a.errors[0].starts_with("/etc/passwd:2: expected 7"));
        assert!(a.errors[1].starts_with("/etc/passwd:3: expected a numeric id"));
        assert!(a.errors[2].starts_with("/etc/group: "));
    }
}
