//! `only_if`: where a control or a check applies. A control (or check)
//! whose condition does not hold on the target is *skipped* with the
//! reason; every condition written must hold.
//!
//! ```toml
//! only_if = { os = ["debian", "ubuntu"], os_version = { ge = "12" },
//!             arch = ["x86_64"], exists = "/usr/bin/python3",
//!             hostname = "node[001-128]" }
//! ```

use super::Location;
use super::check::{convert, suggest};
use super::raw::{Sv, V};
use super::{Diagnostic, Value};
use crate::hostlist::HostList;
use crate::kind::{Compare, Key, Ty};
use crate::matcher::{Actual, Matcher};
use crate::platform::{Platform, canonical_arch};
use crate::target::Target;

/// The keys of an `only_if` table.
pub const ONLY_IF_KEYS: &[&str] = &["os", "os_version", "arch", "exists", "hostname"];

/// A parsed `only_if` condition.
#[derive(Clone, Debug)]
pub struct OnlyIf {
    /// os-release `ID` or one of its `ID_LIKE` words is one of these.
    pub os: Vec<String>,
    /// os-release `VERSION_ID`, compared as versions.
    pub os_version: Option<Matcher>,
    /// The architecture (`uname -m` names) is one of these.
    pub arch: Vec<String>,
    /// Each of these paths exists in the target (symlinks followed inside it).
    pub exists: Vec<String>,
    /// The node's short host name is in this Slurm hostlist.
    pub hostname: Option<(String, HostList)>,
    /// Where `only_if` was written.
    pub location: Location,
}

impl OnlyIf {
    /// `None` when the condition holds on `target`; else why it does not
    /// apply, for the skip message.
    pub fn unmet(&self, target: &dyn Target) -> Option<String> {
        let p = Platform::of(target);
        self.unmet_on(&p, target)
    }

    fn unmet_on(&self, p: &Platform, target: &dyn Target) -> Option<String> {
        if !self.os.is_empty() {
            let hit =
                p.id.iter()
                    .chain(&p.id_like)
                    .any(|id| self.os.iter().any(|o| o == id));
            if !hit {
                return Some(format!(
                    "not applicable: only for os {}; {}",
                    self.os.join(", "),
                    this_is(p)
                ));
            }
        }
        if let Some(m) = &self.os_version {
            let ok = p
                .version_id
                .as_deref()
                .is_some_and(|v| m.test(Actual::Str(v)));
            if !ok {
                let have = match (&p.version_id, &p.id) {
                    (None, Some(_)) => format!("this is {} without VERSION_ID", p.describe_os()),
                    _ => this_is(p),
                };
                return Some(format!(
                    "not applicable: only for os_version {}; {have}",
                    m.describe()
                ));
            }
        }
        if !self.arch.is_empty() {
            match &p.arch {
                Ok(a) if self.arch.contains(a) => {}
                Ok(a) => {
                    return Some(format!(
                        "not applicable: only for arch {}; this is {a}",
                        self.arch.join(", ")
                    ));
                }
                Err(e) => {
                    return Some(format!(
                        "not applicable: only for arch {}; {e}",
                        self.arch.join(", ")
                    ));
                }
            }
        }
        for path in &self.exists {
            if target.metadata(path, true).is_err() {
                return Some(format!("not applicable: only where {path} exists"));
            }
        }
        if let Some((text, list)) = &self.hostname {
            match &p.hostname {
                Ok(h) if list.matches(h) => {}
                Ok(h) => {
                    return Some(format!(
                        "not applicable: only for hosts {text}; this is {h}"
                    ));
                }
                Err(e) => return Some(format!("not applicable: only for hosts {text}; {e}")),
            }
        }
        None
    }
}

/// `this is rocky 9.3 (…)`, or why the os is unknown.
fn this_is(p: &Platform) -> String {
    match &p.id {
        Some(_) => format!("this is {}", p.describe_os()),
        None => p.describe_os(),
    }
}

/// Parses an `only_if` table (already interpolated), collecting every
/// problem with its place.
pub(crate) fn parse(v: &Sv, diags: &mut Vec<Diagnostic>) -> Option<OnlyIf> {
    let Some(entries) = v.as_table() else {
        diags.push(v.diag(Diagnostic::error(
            "wrong-type",
            format!(
                "`only_if` must be a table such as {{ os = [\"debian\"] }}, got {}",
                v.v.type_name()
            ),
        )));
        return None;
    };
    let before = diags.len();
    if entries.is_empty() {
        diags.push(v.diag(Diagnostic::error(
            "empty-matcher",
            format!(
                "`only_if` is an empty table: it would always apply; give one of {}",
                ONLY_IF_KEYS.join(", ")
            ),
        )));
        return None;
    }
    let mut out = OnlyIf {
        os: Vec::new(),
        os_version: None,
        arch: Vec::new(),
        exists: Vec::new(),
        hostname: None,
        location: v.loc.clone(),
    };
    let list = |key: &'static str, v: &Sv, diags: &mut Vec<Diagnostic>| -> Vec<(String, Sv)> {
        let items: Vec<&Sv> = match &v.v {
            V::Array(items) => items.iter().collect(),
            _ => vec![v],
        };
        let mut out = Vec::new();
        for i in items {
            match &i.v {
                V::Str(s) if !s.is_empty() => out.push((s.clone(), i.clone())),
                V::Int(n) => out.push((n.to_string(), i.clone())),
                _ => diags.push(i.diag(Diagnostic::error(
                    "wrong-type",
                    format!("`only_if.{key}` must be a non-empty string or a list of them"),
                ))),
            }
        }
        if out.is_empty() && matches!(v.v, V::Array(_)) {
            diags.push(v.diag(Diagnostic::error(
                "empty-matcher",
                format!("`only_if.{key}` is an empty list: the control would never apply"),
            )));
        }
        out
    };
    for e in entries {
        match e.key.as_str() {
            "os" => {
                for (s, at) in list("os", &e.value, diags) {
                    if s.bytes().any(|b| {
                        !(b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                    }) {
                        diags.push(at.diag(Diagnostic::error(
                            "bad-value",
                            format!("`only_if.os`: {s:?} is not an os-release ID (lower-case, such as debian, ubuntu, rhel, rocky)"),
                        )));
                    }
                    out.os.push(s);
                }
            }
            "os_version" => {
                let key = Key::new("only_if.os_version", Ty::Matcher(Compare::Version), "");
                if let Some(Value::Matcher(m)) = convert(&key, &e.value, diags) {
                    out.os_version = Some(m);
                }
            }
            "arch" => {
                for (s, at) in list("arch", &e.value, diags) {
                    match canonical_arch(&s) {
                        Some(a) => out.arch.push(a.to_string()),
                        None => diags.push(at.diag(Diagnostic::error(
                            "bad-value",
                            format!(
                                "`only_if.arch`: unknown architecture {s:?}; expected one of {}",
                                crate::platform::ARCHES.join(", ")
                            ),
                        ))),
                    }
                }
            }
            "exists" => {
                for (s, at) in list("exists", &e.value, diags) {
                    if !s.starts_with('/') {
                        diags.push(at.diag(Diagnostic::error(
                            "bad-value",
                            format!(
                                "`only_if.exists`: {s:?} must be an absolute path inside the target"
                            ),
                        )));
                    }
                    out.exists.push(s);
                }
            }
            "hostname" => {
                let items = list("hostname", &e.value, diags);
                let text: Vec<&str> = items.iter().map(|(s, _)| s.as_str()).collect();
                let text = text.join(",");
                if !items.is_empty() {
                    match HostList::parse(&text) {
                        Ok(l) => out.hostname = Some((text, l)),
                        Err(err) => diags.push(e.value.diag(Diagnostic::error(
                            "bad-value",
                            format!("`only_if.hostname`: {text:?} is not a hostlist: {err}"),
                        ))),
                    }
                }
            }
            other => diags.push(e.key_at.diag(Diagnostic::error(
                "unknown-key",
                format!(
                    "unknown key `{other}` in `only_if`{}; expected one of {}",
                    suggest(other, ONLY_IF_KEYS.iter().copied()),
                    ONLY_IF_KEYS.join(", ")
                ),
            ))),
        }
    }
    (diags.len() == before).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::MemoryTarget;

    fn rocky() -> Platform {
        Platform {
            id: Some("rocky".into()),
            id_like: vec!["rhel".into(), "centos".into(), "fedora".into()],
            version_id: Some("9.3".into()),
            os_error: None,
            arch: Ok("x86_64".into()),
            hostname: Ok("node042".into()),
        }
    }

    fn cond() -> OnlyIf {
        OnlyIf {
            os: Vec::new(),
            os_version: None,
            arch: Vec::new(),
            exists: Vec::new(),
            hostname: None,
            location: Location {
                file: std::sync::Arc::new("p.toml".into()),
                line: 1,
                column: 1,
            },
        }
    }

    fn version(pred: crate::matcher::Pred) -> Matcher {
        Matcher {
            preds: vec![pred],
            compare: Compare::Version,
        }
    }

    #[test]
    fn each_condition_and_its_reason() {
        use crate::matcher::Pred;
        let t = MemoryTarget::new().file("/usr/bin/python3", 0o755, 0, 0, "");
        let p = rocky();
        let unmet = |c: OnlyIf| c.unmet_on(&p, &t);
        assert_eq!(
            unmet(OnlyIf {
                os: vec!["rhel".into()],
                ..cond()
            }),
            None
        );
        assert_eq!(
            unmet(OnlyIf {
                os: vec!["debian".into(), "ubuntu".into()],
                ..cond()
            })
            .unwrap(),
            "not applicable: only for os debian, ubuntu; this is rocky 9.3 (like rhel centos fedora)"
        );
        assert_eq!(
            unmet(OnlyIf {
                os_version: Some(version(Pred::Ge("9".into()))),
                ..cond()
            }),
            None
        );
        assert_eq!(
            unmet(OnlyIf {
                os_version: Some(version(Pred::Ge("10".into()))),
                ..cond()
            })
            .unwrap(),
            "not applicable: only for os_version >= 10; this is rocky 9.3 (like rhel centos fedora)"
        );
        assert_eq!(
            unmet(OnlyIf {
                arch: vec!["x86_64".into()],
                ..cond()
            }),
            None
        );
        assert_eq!(
            unmet(OnlyIf {
                arch: vec!["aarch64".into()],
                ..cond()
            })
            .unwrap(),
            "not applicable: only for arch aarch64; this is x86_64"
        );
        assert_eq!(
            unmet(OnlyIf {
                exists: vec!["/usr/bin/python3".into()],
                ..cond()
            }),
            None
        );
        assert_eq!(
            unmet(OnlyIf {
                exists: vec!["/usr/bin/python3".into(), "/opt/x".into()],
                ..cond()
            })
            .unwrap(),
            "not applicable: only where /opt/x exists"
        );
        let hosts = |s: &str| Some((s.to_string(), HostList::parse(s).unwrap()));
        assert_eq!(
            unmet(OnlyIf {
                hostname: hosts("node[001-128]"),
                ..cond()
            }),
            None
        );
        assert_eq!(
            unmet(OnlyIf {
                hostname: hosts("gpu[01-04]"),
                ..cond()
            })
            .unwrap(),
            "not applicable: only for hosts gpu[01-04]; this is node042"
        );
        let bare = Platform {
            os_error: Some("the target has no os-release (…)".into()),
            arch: Err("the target's architecture is unknown (…)".into()),
            hostname: Err("the target's host name is unknown (…)".into()),
            id: None,
            id_like: Vec::new(),
            version_id: None,
        };
        assert_eq!(
            OnlyIf {
                os: vec!["debian".into()],
                ..cond()
            }
            .unmet_on(&bare, &t)
            .unwrap(),
            "not applicable: only for os debian; the target has no os-release (…)"
        );
        assert_eq!(
            OnlyIf {
                arch: vec!["x86_64".into()],
                ..cond()
            }
            .unmet_on(&bare, &t)
            .unwrap(),
            "not applicable: only for arch x86_64; the target's architecture is unknown (…)"
        );
    }

    struct Probe;
    impl crate::kind::Kind for Probe {
        fn name(&self) -> &'static str {
            "probe"
        }
        fn subject(&self) -> Key {
            Key::new("name", Ty::Str, "")
        }
        fn keys(&self) -> &'static [Key] {
            const K: &[Key] = &[Key::new("ok", Ty::Bool, "")];
            K
        }
        fn doc(&self) -> &'static str {
            ""
        }
        fn eval(
            &self,
            c: &super::super::Check,
            _: &crate::run::Context<'_>,
        ) -> crate::outcome::Evaluation {
            vec![crate::outcome::PropertyResult::verdict(
                "ok",
                true,
                c.subject.clone(),
            )]
            .into()
        }
    }

    #[test]
    fn the_runner_skips_what_does_not_apply_with_the_reason() {
        use crate::outcome::Status;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(
            &path,
            "[profile]\nname = \"t\"\n\
             [[control]]\nid = \"deb\"\nonly_if = { os = \"debian\" }\n[[control.probe]]\nname = \"a\"\nok = true\n\
             [[control]]\nid = \"rh\"\nonly_if = { os = \"rhel\", os_version = { ge = \"9\" } }\n[[control.probe]]\nname = \"b\"\nok = true\n\
             [[control]]\nid = \"mixed\"\n[[control.probe]]\nname = \"c\"\nok = true\nonly_if = { exists = \"/usr/lib64\" }\n\
             [[control.probe]]\nname = \"d\"\nok = true\nonly_if = { exists = \"/usr/lib/x86_64-linux-gnu\" }\n",
        )
        .unwrap();
        let kinds: &[&'static dyn crate::kind::Kind] = &[&Probe];
        let profile = crate::profile::load(&path, kinds, &Default::default()).unwrap();
        let t = MemoryTarget::new()
            .file(
                "/etc/os-release",
                0o644,
                0,
                0,
                "ID=rocky\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.3\"\n",
            )
            .dir("/usr/lib64", 0o755, 0, 0);
        let out = crate::run::run(&profile, &t, &Default::default(), Vec::new());
        let c = &out.report.controls;
        assert_eq!(c[0].status, Status::Skip);
        assert_eq!(
            c[0].skip_reason.as_deref(),
            Some("not applicable: only for os debian; this is rocky 9.3 (like rhel centos fedora)")
        );
        assert_eq!(c[1].status, Status::Pass);
        assert_eq!(
            c[2].status,
            Status::Pass,
            "a skipped check does not fail its control"
        );
        assert_eq!(c[2].checks[0].status, Status::Pass);
        assert_eq!(c[2].checks[1].status, Status::Skip);
        assert_eq!(
            c[2].checks[1].properties[0].message,
            "not applicable: only where /usr/lib/x86_64-linux-gnu exists"
        );
    }
}
