//! A hand-built report with every outcome, shared by the reporters' tests.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{CheckResult, ControlResult, JSON_SCHEMA, ProfileInfo, Report, Summary, TargetInfo};
use crate::outcome::{PropertyResult, Status};
use crate::profile::{Location, Severity};
use crate::target::TargetKind;

fn loc(line: u32, column: u32) -> Location {
    Location {
        file: Arc::new(PathBuf::from("profiles/compute.toml")),
        line,
        column,
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub(crate) fn check(
    kind: &str,
    subject: &str,
    line: u32,
    properties: Vec<PropertyResult>,
) -> CheckResult {
    CheckResult {
        kind: kind.to_owned(),
        subject: subject.to_owned(),
        name: format!("{kind} {subject}"),
        status: Status::combine(properties.iter().map(|p| p.status)),
        location: loc(line, 3),
        duration: ms(2),
        properties,
        output: String::new(),
    }
}

pub(crate) fn control(
    id: &str,
    title: Option<&str>,
    line: u32,
    checks: Vec<CheckResult>,
) -> ControlResult {
    ControlResult {
        id: id.to_owned(),
        title: title.map(str::to_owned),
        severity: Severity::Medium,
        tags: Vec::new(),
        desc: None,
        status: Status::combine(checks.iter().map(|c| c.status)),
        waived: None,
        skip_reason: None,
        location: loc(line, 1),
        duration: ms(5),
        checks,
    }
}

pub(crate) fn report(controls: Vec<ControlResult>, warnings: Vec<String>) -> Report {
    Report {
        schema: JSON_SCHEMA,
        profile: ProfileInfo {
            name: "compute".to_owned(),
            title: Some("HPC compute node image".to_owned()),
            version: Some("1.4.0".to_owned()),
            file: "profiles/compute.toml".to_owned(),
        },
        target: TargetInfo {
            kind: TargetKind::Rootfs,
            description: "rootfs:/srv/img".to_owned(),
            identity: Default::default(),
        },
        hostname: "build01".to_owned(),
        // 2026-07-01T12:00:00Z
        started: SystemTime::UNIX_EPOCH + Duration::from_secs(1_782_907_200),
        duration: Duration::from_millis(1234),
        summary: Summary::of(&controls),
        controls,
        warnings,
    }
}

/// The `Started` event of [`sample`].
pub(crate) fn started() -> super::Event {
    let r = sample();
    super::Event::Started {
        controls: r.controls.len(),
        checks: r.summary.checks.total,
        profile: r.profile,
        target: r.target,
    }
}

/// Pass, fail (two failing properties), a whole-control skip, a pass with a
/// skipped check, an error with output, and a waived failure.
pub(crate) fn sample() -> Report {
    let mut munge = control(
        "munge-key",
        Some("MUNGE key is private to munge"),
        10,
        vec![check(
            "file",
            "/etc/munge/munge.key",
            12,
            vec![
                PropertyResult::compare("owner", true, "munge", "munge"),
                PropertyResult::compare("mode", true, "0400", "0400"),
            ],
        )],
    );
    munge.severity = Severity::High;
    munge.tags = vec!["munge".to_owned(), "security".to_owned()];

    let mut shadow = control(
        "shadow-perms",
        Some("/etc/shadow is not world-readable"),
        38,
        vec![
            check(
                "file",
                "/etc/shadow",
                40,
                vec![
                    PropertyResult::compare("mode", false, "at most 0640", "0666"),
                    PropertyResult::compare("owner", false, "root", "nobody"),
                    PropertyResult::compare("group", true, "shadow", "shadow"),
                ],
            ),
            check(
                "file",
                "/etc/gshadow",
                46,
                vec![PropertyResult::compare(
                    "mode",
                    true,
                    "at most 0640",
                    "0640",
                )],
            ),
        ],
    );
    shadow.severity = Severity::Critical;
    shadow.desc = Some("Password hashes must not be readable by users.".to_owned());

    let mut gpu = control(
        "gpu-count",
        Some("All GPUs are visible"),
        50,
        vec![check("command", "nvidia-smi -L", 52, vec![])],
    );
    gpu.skip_reason = Some("needs a live node".to_owned());

    let services = control(
        "slurm-services",
        Some("Slurm daemons are set up"),
        60,
        vec![
            check(
                "service",
                "slurmd",
                62,
                vec![PropertyResult::compare("enabled", true, "true", "true")],
            ),
            check(
                "service",
                "munge",
                66,
                vec![PropertyResult::skip("active", "needs a live node")],
            ),
        ],
    );

    let mut mpi_check = check(
        "command",
        "mpirun -n 2 hello",
        72,
        vec![PropertyResult::error("exit_status", "timed out after 30s")],
    );
    mpi_check.output = "[node] starting 2 ranks\nrank 0: hello\n".to_owned();
    let mpi = control(
        "mpi-hello",
        Some("MPI hello world runs"),
        70,
        vec![mpi_check],
    );

    let mut kmod = control(
        "kmod-network",
        None,
        80,
        vec![check(
            "kernel_module",
            "mlx5_core",
            82,
            vec![PropertyResult::compare("present", false, "true", "false")],
        )],
    );
    kmod.waived = Some("mlx5 firmware lands in image 2027.02".to_owned());

    report(
        vec![munge, shadow, gpu, services, mpi, kmod],
        vec!["profiles/compute.toml:90:1: warning[expired-waiver]: waiver for \"old-*\" expired on 2026-01-31 and is ignored (old)".to_owned()],
    )
}

/// Check output and messages full of what breaks XML and terminals: ANSI
/// escapes, NUL, `]]>`, markup characters, U+FFFE.
pub(crate) fn hostile() -> Report {
    let nasty = "\x1b[31mred\x1b[0m nul:\0 cdata-end:]]> markup:<a href=\"x\">&amp;</a> bell:\x07 nonchar:\u{FFFE}\u{FFFF} tab:\t";
    let mut c = check(
        "file",
        "/etc/motd",
        5,
        vec![PropertyResult::compare(
            "content",
            false,
            "matches ^Welcome",
            nasty,
        )],
    );
    c.output = format!("line one\n{nasty}\nline three ]]> end");
    let mut waived = check(
        "file",
        "/etc/issue",
        8,
        vec![PropertyResult::verdict("content", false, nasty)],
    );
    waived.output = nasty.to_owned();
    let mut w = control("motd-waived", Some(nasty), 7, vec![waived]);
    w.waived = Some(format!("reason with {nasty}"));
    report(
        vec![control("motd", Some(nasty), 3, vec![c]), w],
        vec![nasty.to_owned()],
    )
}
