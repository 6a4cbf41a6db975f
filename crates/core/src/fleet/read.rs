//! Reading node reports: JSON files, directory trees of them, or several
//! documents concatenated on one stream (what `srun` gathers on stdout).
//!
//! Only what a fleet report needs is kept of each report; everything else
//! is skipped by the parser without being stored, so memory grows with the
//! number of nodes and controls, not with the size of the input.

use std::borrow::Cow;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Deserialize;

use super::{Identity, NodeControl, NodeReport};
use crate::outcome::Status;
use crate::profile::Severity;
use crate::report::JSON_SCHEMA;

/// A report file is read whole; more than this is not a node report.
pub const MAX_REPORT_BYTES: u64 = 256 << 20;

/// Where a report came from and what was wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputProblem {
    /// The file (or `-` for stdin, with the document's number).
    pub source: String,
    pub message: String,
}

/// What one input produced: reports, and problems naming their source.
#[derive(Debug, Default)]
pub struct Inputs {
    pub reports: Vec<NodeReport>,
    pub problems: Vec<InputProblem>,
}

/// Reads every path: a file is one report, a directory is searched for
/// `*.json` files (recursively, in name order), `-` reads stdin. Files are
/// parsed in parallel; the result keeps the order of the paths.
pub fn read_paths(paths: &[PathBuf]) -> Inputs {
    let mut files: Vec<Result<PathBuf, InputProblem>> = Vec::new();
    let mut stdin = false;
    for p in paths {
        if p.as_os_str() == "-" {
            stdin = true;
            continue;
        }
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => {
                let before = files.len();
                collect_dir(p, &mut files);
                // An empty directory is a wrong --output pattern or a job
                // that never ran: said, not merged as "nothing to say".
                if files.len() == before {
                    files.push(Err(problem(p, "no *.json file in it".into())));
                }
            }
            Ok(m) if m.is_file() => files.push(Ok(p.clone())),
            // A FIFO or device would block or never end.
            Ok(_) => files.push(Err(problem(p, "not a regular file".into()))),
            Err(e) => files.push(Err(problem(p, format!("cannot read: {e}")))),
        }
    }
    let parsed: Vec<Result<NodeReport, InputProblem>> = files
        .into_par_iter()
        .map(|f| f.and_then(|path| read_file(&path)))
        .collect();
    let mut out = Inputs::default();
    for r in parsed {
        match r {
            Ok(r) => out.reports.push(r),
            Err(p) => out.problems.push(p),
        }
    }
    if stdin {
        let mut buf = Vec::new();
        match io::stdin().lock().read_to_end(&mut buf) {
            Ok(_) => read_stream("-", &buf, &mut out),
            Err(e) => out.problems.push(InputProblem {
                source: "-".into(),
                message: format!("cannot read stdin: {e}"),
            }),
        }
    }
    out
}

fn problem(path: &Path, message: String) -> InputProblem {
    InputProblem {
        source: path.display().to_string(),
        message,
    }
}

/// `*.json` files under `dir`, depth first in name order; symlinks are
/// not followed (one to a `.json` name is named as a problem).
fn collect_dir(dir: &Path, files: &mut Vec<Result<PathBuf, InputProblem>>) {
    let mut entries: Vec<(PathBuf, std::fs::FileType)> = match std::fs::read_dir(dir) {
        Ok(rd) => {
            let mut v = Vec::new();
            for e in rd {
                match e.and_then(|e| e.file_type().map(|t| (e.path(), t))) {
                    Ok(x) => v.push(x),
                    Err(e) => files.push(Err(problem(dir, format!("cannot read: {e}")))),
                }
            }
            v
        }
        Err(e) => {
            files.push(Err(problem(dir, format!("cannot read: {e}"))));
            return;
        }
    };
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (path, ty) in entries {
        let json = path.extension().is_some_and(|x| x == "json");
        if ty.is_dir() {
            collect_dir(&path, files);
        } else if json && ty.is_file() {
            files.push(Ok(path));
        } else if json && ty.is_symlink() {
            // A directory may be shared with the nodes: a link planted
            // there could point anywhere on this host.
            files.push(Err(problem(
                &path,
                "a symlink: not followed in a directory (name the file itself to read it)".into(),
            )));
        }
    }
}

fn read_file(path: &Path) -> Result<NodeReport, InputProblem> {
    let data = read_limited(path).map_err(|e| problem(path, format!("cannot read: {e}")))?;
    let source = path.display().to_string();
    parse_one(&data, &source).map_err(|message| InputProblem { source, message })
}

fn read_limited(path: &Path) -> io::Result<Vec<u8>> {
    let f = std::fs::File::open(path)?;
    let mut buf = Vec::new();
    f.take(MAX_REPORT_BYTES + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > MAX_REPORT_BYTES {
        return Err(io::Error::other(format!(
            "larger than {} MiB, not a node report",
            MAX_REPORT_BYTES >> 20
        )));
    }
    Ok(buf)
}

/// Parses one whole document as a node report.
pub fn parse_one(data: &[u8], source: &str) -> Result<NodeReport, String> {
    if data.iter().all(u8::is_ascii_whitespace) {
        return Err("empty: no report in it".into());
    }
    let mut de = serde_json::Deserializer::from_slice(data);
    let raw = RawReport::deserialize(&mut de)
        .and_then(|r| de.end().map(|()| r))
        .map_err(|e| explain(data, e))?;
    convert(raw, source)
}

/// Reads reports concatenated on one stream. A document that does not
/// parse is named by its number and line; reading goes on at the next line
/// that starts with `{`, as every report written by nodecheck does.
pub fn read_stream(name: &str, data: &[u8], out: &mut Inputs) {
    let mut offset = 0;
    let mut number = 0;
    let mut any = false;
    while offset < data.len() {
        let rest = &data[offset..];
        let skip = rest.iter().take_while(|b| b.is_ascii_whitespace()).count();
        if skip == rest.len() {
            break;
        }
        number += 1;
        any = true;
        let start = offset + skip;
        let line = 1 + data[..start].iter().filter(|&&b| b == b'\n').count();
        let source = format!("{name} (document {number}, line {line})");
        let mut stream =
            serde_json::Deserializer::from_slice(&data[start..]).into_iter::<RawReport>();
        match stream.next() {
            Some(Ok(raw)) => {
                offset = start + stream.byte_offset();
                match convert(raw, &source) {
                    Ok(r) => out.reports.push(r),
                    Err(message) => out.problems.push(InputProblem { source, message }),
                }
            }
            Some(Err(e)) => {
                out.problems.push(InputProblem {
                    source,
                    message: explain(&data[start..], e),
                });
                // Resynchronize on the next document start.
                offset = match data[start + 1..].windows(2).position(|w| w == b"\n{") {
                    Some(p) => start + 1 + p + 1,
                    None => data.len(),
                };
            }
            None => break,
        }
    }
    if !any {
        out.problems.push(InputProblem {
            source: name.into(),
            message: "empty: no report in it".into(),
        });
    }
}

/// Why `data` is not a report, with the schema named when a report of
/// another format version is the cause.
fn explain(data: &[u8], e: serde_json::Error) -> String {
    #[derive(Deserialize)]
    struct Head<'a> {
        #[serde(borrow)]
        schema: Option<Cow<'a, str>>,
    }
    if let Ok(Some(head)) = serde_json::Deserializer::from_slice(data)
        .into_iter::<Head>()
        .next()
        .transpose()
        .map(|h| h.and_then(|h| h.schema))
        && head != JSON_SCHEMA
    {
        return schema_message(&head);
    }
    if e.is_eof() {
        format!("truncated JSON report (ends at line {})", e.line())
    } else if e.is_syntax() {
        format!("not a JSON report: {e}")
    } else {
        format!("not a nodecheck JSON report: {e}")
    }
}

fn schema_message(schema: &str) -> String {
    if schema.starts_with("nodecheck/report/") {
        format!(
            "report format {schema:?} is not one this nodecheck reads ({JSON_SCHEMA}); use a newer nodecheck"
        )
    } else {
        format!("not a nodecheck report: schema {schema:?}")
    }
}

#[derive(Deserialize)]
struct RawReport<'a> {
    #[serde(borrow)]
    schema: Cow<'a, str>,
    #[serde(borrow)]
    hostname: Cow<'a, str>,
    #[serde(borrow)]
    profile: RawProfile<'a>,
    #[serde(borrow, default)]
    target: Option<RawTarget<'a>>,
    #[serde(borrow)]
    started: Cow<'a, str>,
    #[serde(borrow)]
    controls: Vec<RawControl<'a>>,
}

#[derive(Deserialize)]
struct RawProfile<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
}

#[derive(Deserialize, Default)]
struct RawTarget<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    os: Option<RawOs<'a>>,
    #[serde(borrow, default)]
    kernel: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    image_release: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    image: Option<RawImage<'a>>,
}

/// `target.image` of a packed image's report: only its digests matter here.
#[derive(Deserialize, Default)]
struct RawImage<'a> {
    #[serde(borrow, default)]
    digest: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    config_digest: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    sha256: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
struct RawOs<'a> {
    #[serde(borrow, default)]
    pretty_name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    version_id: Option<Cow<'a, str>>,
}

struct RawControl<'a> {
    id: Cow<'a, str>,
    title: Option<Cow<'a, str>>,
    severity: Cow<'a, str>,
    status: Cow<'a, str>,
    waived: Option<Cow<'a, str>>,
    skip_reason: Option<Cow<'a, str>>,
    checks: Vec<RawCheck<'a>>,
}

/// By hand rather than derived: the checks of a passing control (most of
/// a fleet's input) are skipped without being stored. nodecheck writes
/// `status` before `checks`; a report written the other way round is read
/// whole.
impl<'de: 'a, 'a> Deserialize<'de> for RawControl<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = RawControl<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a control")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut m: M,
            ) -> Result<Self::Value, M::Error> {
                use serde::de::{Error, IgnoredAny};
                let (mut id, mut title, mut severity, mut status) = (None, None, None, None);
                let (mut waived, mut skip_reason, mut checks) = (None, None, Vec::new());
                while let Some(key) = m.next_key::<Cow<'de, str>>()? {
                    match &*key {
                        "id" => id = Some(m.next_value()?),
                        "title" => title = m.next_value()?,
                        "severity" => severity = Some(m.next_value()?),
                        "status" => status = Some(m.next_value::<Cow<'de, str>>()?),
                        "waived" => waived = m.next_value()?,
                        "skip_reason" => skip_reason = m.next_value()?,
                        "checks" if status.as_deref() == Some("pass") => {
                            m.next_value::<IgnoredAny>()?;
                        }
                        "checks" => checks = m.next_value()?,
                        _ => {
                            m.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(RawControl {
                    id: id.ok_or_else(|| M::Error::missing_field("id"))?,
                    title,
                    severity: severity.ok_or_else(|| M::Error::missing_field("severity"))?,
                    status: status.ok_or_else(|| M::Error::missing_field("status"))?,
                    waived,
                    skip_reason,
                    checks,
                })
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
struct RawCheck<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow)]
    status: Cow<'a, str>,
    #[serde(borrow, default)]
    properties: Vec<RawProperty<'a>>,
}

#[derive(Deserialize)]
struct RawProperty<'a> {
    #[serde(borrow)]
    status: Cow<'a, str>,
    #[serde(borrow, default)]
    message: Cow<'a, str>,
}

fn status(s: &str) -> Result<Status, String> {
    Ok(match s {
        "pass" => Status::Pass,
        "fail" => Status::Fail,
        "error" => Status::Error,
        "skip" => Status::Skip,
        _ => return Err(format!("unknown status {s:?}")),
    })
}

fn convert(raw: RawReport<'_>, source: &str) -> Result<NodeReport, String> {
    if raw.schema != JSON_SCHEMA {
        return Err(schema_message(&raw.schema));
    }
    let target = raw.target.unwrap_or_default();
    let os = target.os.unwrap_or_default();
    // The target's own name (a node's hostname, an image's directory)
    // when the report has one: several images checked on one build host
    // are several entries, not duplicates of that host.
    let name = target
        .name
        .as_deref()
        .filter(|n| !n.is_empty())
        .unwrap_or(&raw.hostname);
    if name.is_empty() {
        return Err("the report names no host".into());
    }
    let mut controls = Vec::with_capacity(raw.controls.len());
    for c in raw.controls {
        let st = status(&c.status).map_err(|e| format!("control {:?}: {e}", c.id))?;
        let severity = Severity::parse(&c.severity)
            .ok_or_else(|| format!("control {:?}: unknown severity {:?}", c.id, c.severity))?;
        let message = match st {
            Status::Pass => String::new(),
            Status::Skip => match c.skip_reason {
                Some(r) => r.into_owned(),
                None => check_messages(&c.checks, Status::Skip)?,
            },
            Status::Fail | Status::Error => check_messages(&c.checks, st)?,
        };
        controls.push(NodeControl {
            id: c.id.into_owned(),
            title: c.title.map(Cow::into_owned),
            severity,
            status: st,
            waived: c.waived.is_some(),
            message,
        });
    }
    Ok(NodeReport {
        node: name.to_owned(),
        source: source.to_owned(),
        profile: raw.profile.name.into_owned(),
        started: raw.started.into_owned(),
        identity: Identity {
            pretty_name: os.pretty_name.map(Cow::into_owned),
            version_id: os.version_id.map(Cow::into_owned),
            kernel: target.kernel.map(Cow::into_owned),
            image_release: target.image_release.map(Cow::into_owned),
            // The image ID first: the same whichever form (layout,
            // oci-archive, docker-archive, compressed or not) the image was
            // saved in, where the manifest digest follows the layers'
            // compression. The config lists the layers' uncompressed
            // digests, so it pins the content.
            image_digest: target.image.and_then(|i| {
                i.config_digest
                    .map(Cow::into_owned)
                    .or_else(|| i.digest.map(Cow::into_owned))
                    .or_else(|| i.sha256.map(|h| format!("sha256:{h}")))
            }),
        },
        controls,
    })
}

/// `check: message` for each property of the checks with status `want`,
/// one per line: what makes two nodes' failures "the same".
fn check_messages(checks: &[RawCheck<'_>], want: Status) -> Result<String, String> {
    let mut out = String::new();
    for k in checks {
        if status(&k.status)? != want {
            continue;
        }
        for p in &k.properties {
            if status(&p.status)? != want || p.message.is_empty() {
                continue;
            }
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&k.name);
            out.push_str(": ");
            out.push_str(&p.message);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(host: &str, status: &str) -> String {
        format!(
            r#"{{"schema":"nodecheck/report/v1","profile":{{"name":"p","file":"p.toml"}},
"target":{{"kind":"live","description":"live"}},"hostname":"{host}","started":"2026-01-01T00:00:00.000Z",
"duration":0.1,"controls":[{{"id":"c","severity":"high","tags":[],"status":"{status}",
"location":{{"file":"p.toml","line":1,"column":1}},"duration":0.0,"checks":[{{"kind":"file","subject":"/x",
"name":"file /x","status":"{status}","location":{{"file":"p.toml","line":2,"column":1}},"duration":0.0,
"properties":[{{"key":"exists","status":"{status}","message":"m"}}]}}]}}],"summary":{{}},"warnings":[]}}"#
        )
    }

    #[test]
    fn a_report_is_reduced_to_its_controls() {
        let r = parse_one(doc("n1", "fail").as_bytes(), "a.json").unwrap();
        assert_eq!(r.node, "n1");
        assert_eq!(r.controls[0].status, Status::Fail);
        assert_eq!(r.controls[0].message, "file /x: m");
    }

    /// A packed image's digests reach the fleet identity: the image ID
    /// first, else the manifest digest, else the file's sha256.
    #[test]
    fn an_image_s_digest_is_part_of_its_identity() {
        let with = |image: &str| {
            doc("n1", "pass").replace(
                r#""description":"live"}"#,
                &format!(r#""description":"oci:/i","name":"img","image":{image}}}"#),
            )
        };
        let digest = |image: &str| {
            parse_one(with(image).as_bytes(), "a.json")
                .unwrap()
                .identity
                .image_digest
        };
        assert_eq!(
            digest(
                r#"{"path":"/i","format":"oci","size":1,"digest":"sha256:m","config_digest":"sha256:c"}"#
            )
            .as_deref(),
            Some("sha256:c")
        );
        assert_eq!(
            digest(r#"{"path":"/i","format":"oci","size":1,"digest":"sha256:m"}"#).as_deref(),
            Some("sha256:m")
        );
        assert_eq!(
            digest(r#"{"path":"/i","format":"cpio","size":1,"sha256":"ab"}"#).as_deref(),
            Some("sha256:ab")
        );
        assert_eq!(digest(r#"{"path":"/i","format":"cpio","size":1}"#), None);
        assert_eq!(
            parse_one(with("{}").as_bytes(), "a.json").unwrap().node,
            "img"
        );
    }

    #[test]
    fn bad_documents_are_explained() {
        let good = doc("n1", "pass");
        let cut = &good[..good.len() / 2];
        assert!(
            parse_one(cut.as_bytes(), "x")
                .unwrap_err()
                .starts_with("truncated")
        );
        assert!(
            parse_one(b"hello", "x")
                .unwrap_err()
                .starts_with("not a JSON report")
        );
        assert!(parse_one(b"  \n", "x").unwrap_err().starts_with("empty"));
        let future = good.replace("report/v1", "report/v2");
        let e = parse_one(future.as_bytes(), "x").unwrap_err();
        assert!(e.contains("nodecheck/report/v2"), "{e}");
        // A future version whose layout also changed is named by its schema
        // too, not as a parse error.
        let future = r#"{"schema":"nodecheck/report/v3","controls":7}"#;
        let e = parse_one(future.as_bytes(), "x").unwrap_err();
        assert!(e.contains("nodecheck/report/v3"), "{e}");
        let e = parse_one(b"[1,2]", "x").unwrap_err();
        assert!(e.starts_with("not a nodecheck JSON report"), "{e}");
    }

    #[test]
    fn links_in_a_directory_are_named_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("n1.json"), doc("n1", "pass")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("evil.json")).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a report").unwrap();
        let out = read_paths(&[dir.path().to_path_buf()]);
        assert_eq!(out.reports.len(), 1);
        assert_eq!(out.problems.len(), 1, "{:?}", out.problems);
        assert!(out.problems[0].source.ends_with("evil.json"));
        assert!(out.problems[0].message.contains("symlink"));
    }

    #[test]
    fn a_directory_without_reports_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/node1.out"), "srun: error").unwrap();
        let out = read_paths(&[dir.path().to_path_buf()]);
        assert!(out.reports.is_empty());
        assert_eq!(out.problems.len(), 1, "{:?}", out.problems);
        assert_eq!(out.problems[0].source, dir.path().display().to_string());
        assert_eq!(out.problems[0].message, "no *.json file in it");
    }

    #[test]
    fn no_prefix_or_flipped_byte_panics() {
        let text = format!("{}\n{}", doc("n1", "fail"), doc("n2", "pass"));
        let bytes = text.as_bytes();
        for end in 0..bytes.len() {
            let _ = parse_one(&bytes[..end], "x");
            let mut out = Inputs::default();
            read_stream("-", &bytes[..end], &mut out);
            assert!(!out.reports.is_empty() || !out.problems.is_empty());
        }
        for at in (0..bytes.len()).step_by(7) {
            let mut b = bytes.to_vec();
            b[at] ^= 0x5a;
            let mut out = Inputs::default();
            read_stream("-", &b, &mut out);
        }
    }

    #[test]
    fn a_stream_goes_on_after_a_broken_document() {
        let a = doc("n1", "pass");
        let b = doc("n2", "fail");
        let broken = &b[..b.len() - 40];
        let stream = format!("{a}\n{broken}\n{b}\n");
        let mut out = Inputs::default();
        read_stream("-", stream.as_bytes(), &mut out);
        let nodes: Vec<_> = out.reports.iter().map(|r| r.node.as_str()).collect();
        assert_eq!(nodes, ["n1", "n2"]);
        assert_eq!(out.problems.len(), 1, "{:?}", out.problems);
        assert!(out.problems[0].source.contains("document 2"));
        let mut empty = Inputs::default();
        read_stream("-", b"", &mut empty);
        assert_eq!(empty.problems[0].message, "empty: no report in it");
    }
}
