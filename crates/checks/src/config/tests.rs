use std::path::PathBuf;
use std::sync::Arc;

use super::*;
use crate::testing::*;
use nodecheck_core::matcher::{Matcher, Pred, Scalar};
use nodecheck_core::outcome::Status::{Error, Fail, Pass, Skip};
use nodecheck_core::profile::{Location, Value};
use nodecheck_core::target::MemoryTarget;

/// `settings = { name = matcher, … }`.
fn settings(items: &[(&str, Pred)]) -> Value {
    Value::Matchers(
        items
            .iter()
            .map(|(n, p)| NamedMatcher {
                name: n.to_string(),
                matcher: Matcher {
                    preds: vec![p.clone()],
                    compare: Compare::Version,
                },
                location: Location {
                    file: Arc::new(PathBuf::from("test.toml")),
                    line: 9,
                    column: 1,
                },
            })
            .collect(),
    )
}

fn is(v: &str) -> Pred {
    Pred::Eq(Scalar::Str(v.into()))
}

fn not(v: &str) -> Pred {
    Pred::Ne(Scalar::Str(v.into()))
}

const SSHD: &str = "Include /etc/ssh/sshd_config.d/*.conf\n\
                    # PermitRootLogin yes\n\
                    KbdInteractiveAuthentication no\n\
                    UsePAM yes\n\
                    X11Forwarding yes\n\
                    passwordauthentication=no\n\
                    Match User backup\n\
                    \tPermitRootLogin yes\n\
                    \tMaxAuthTries 10\n";

fn sshd(extra: &[(&str, &str)]) -> MemoryTarget {
    let mut t = MemoryTarget::new().file("/etc/ssh/sshd_config", 0o644, 0, 0, SSHD);
    for (p, text) in extra {
        t = t.file(p, 0o644, 0, 0, *text);
    }
    t
}

fn eval_sshd(t: &MemoryTarget, items: &[(&str, Pred)]) -> Evaluation {
    run(
        &check(
            &Config,
            "/etc/ssh/sshd_config",
            vec![("settings", settings(items))],
        ),
        t,
    )
}

#[test]
fn sshd_first_value_wins_case_insensitive_and_match_blocks_do_not_count() {
    let t = sshd(&[]);
    let e = eval_sshd(
        &t,
        &[
            ("PermitRootLogin", not("yes")),
            ("PasswordAuthentication", is("no")),
            ("x11forwarding", is("no")),
            ("MaxAuthTries", Pred::Le("4".into())),
        ],
    );
    assert_eq!(
        results(&e),
        [
            (
                "settings.PermitRootLogin".into(),
                Pass,
                "PermitRootLogin: expected not yes, got prohibit-password (sshd's default: not set \
                 in /etc/ssh/sshd_config; /etc/ssh/sshd_config:8 sets it only inside a Match block)"
                    .into()
            ),
            (
                "settings.PasswordAuthentication".into(),
                Pass,
                "PasswordAuthentication: expected no, got no (/etc/ssh/sshd_config:6)".into()
            ),
            (
                "settings.x11forwarding".into(),
                Fail,
                "x11forwarding: expected no, got yes (/etc/ssh/sshd_config:5)".into()
            ),
            (
                "settings.MaxAuthTries".into(),
                Fail,
                "MaxAuthTries: expected <= 4, got 6 (sshd's default: not set in /etc/ssh/sshd_config; \
                 /etc/ssh/sshd_config:9 sets it only inside a Match block)"
                    .into()
            ),
        ]
    );
}

#[test]
fn sshd_includes_come_first_where_they_stand() {
    let t = sshd(&[
        (
            "/etc/ssh/sshd_config.d/50-site.conf",
            "PermitRootLogin Yes\nX11Forwarding no\n",
        ),
        ("/etc/ssh/sshd_config.d/10-first.conf", "X11Forwarding no\n"),
        ("/etc/ssh/sshd_config.d/README", "not a conf\n"),
    ]);
    let e = eval_sshd(
        &t,
        &[("PermitRootLogin", not("yes")), ("X11Forwarding", is("no"))],
    );
    assert_eq!(
        results(&e),
        [
            (
                "settings.PermitRootLogin".into(),
                Fail,
                "PermitRootLogin: expected not yes, got yes (/etc/ssh/sshd_config.d/50-site.conf:1)".into()
            ),
            (
                "settings.X11Forwarding".into(),
                Pass,
                "X11Forwarding: expected no, got no (/etc/ssh/sshd_config.d/10-first.conf:1)".into()
            ),
        ]
    );
    assert_eq!(
        e.output,
        "read as sshd: /etc/ssh/sshd_config, /etc/ssh/sshd_config.d/10-first.conf, \
         /etc/ssh/sshd_config.d/50-site.conf\n"
    );
}

#[test]
fn include_loops_and_garbage_are_errors_naming_the_file() {
    let t = sshd(&[("/etc/ssh/sshd_config.d/loop.conf", "Include sshd_config\n")]);
    let e = eval_sshd(&t, &[("PermitRootLogin", not("yes"))]);
    assert_eq!(
        results(&e),
        [(
            "settings".into(),
            Error,
            "settings: /etc/ssh/sshd_config.d/loop.conf:1: Include loop: /etc/ssh/sshd_config -> \
             /etc/ssh/sshd_config.d/loop.conf -> /etc/ssh/sshd_config"
                .into()
        )]
    );
    let t = sshd(&[("/etc/ssh/sshd_config.d/bin.conf", "\x7fELF\0\0")]);
    let e = eval_sshd(&t, &[("PermitRootLogin", not("yes"))]);
    assert_eq!(
        result(&e, "settings").1,
        "settings: /etc/ssh/sshd_config:1: /etc/ssh/sshd_config.d/bin.conf: not a text file (it contains NUL bytes)"
    );
    let t = MemoryTarget::new().file(
        "/etc/ssh/sshd_config",
        0o644,
        0,
        0,
        "Port 22\nPermitRootLogin\n",
    );
    let e = eval_sshd(&t, &[("Port", is("22"))]);
    assert_eq!(
        result(&e, "settings"),
        (
            Error,
            "settings: /etc/ssh/sshd_config:2: PermitRootLogin has no value".into()
        )
    );
}

#[test]
fn missing_files_and_settings() {
    let e = run(
        &check(
            &Config,
            "/etc/slurm/slurm.conf",
            vec![("settings", settings(&[("ClusterName", is("x"))]))],
        ),
        &MemoryTarget::new(),
    );
    assert_eq!(
        results(&e),
        [
            (
                "exists".into(),
                Fail,
                "exists: /etc/slurm/slurm.conf does not exist".into()
            ),
            (
                "settings".into(),
                Skip,
                "/etc/slurm/slurm.conf does not exist".into()
            ),
        ]
    );
    let t = MemoryTarget::new().file("/etc/default/x", 0o644, 0, 0, "A=1\n");
    let e = run(
        &check(
            &Config,
            "/etc/default/x",
            vec![("settings", settings(&[("B", is("1"))]))],
        ),
        &t,
    );
    assert_eq!(
        result(&e, "settings.B"),
        (
            Fail,
            "B: expected 1, but it is not set in /etc/default/x".into()
        )
    );
}

const SLURM: &str = "ClusterName=hpc # the cluster\n\
                     SlurmctldHost=head01\n\
                     proctracktype=proctrack/linuxproc\n\
                     ProctrackType=proctrack/cgroup\n\
                     Include /etc/slurm/nodes.conf\n\
                     PartitionName=batch Nodes=node[01-04] Default=YES \\\n  MaxTime=INFINITE State=UP\n";

#[test]
fn slurm_conf_keys_records_and_includes() {
    let t = MemoryTarget::new()
        .file("/etc/slurm/slurm.conf", 0o644, 0, 0, SLURM)
        .file(
            "/etc/slurm/nodes.conf",
            0o644,
            0,
            0,
            "NodeName=node[01-04] CPUs=64 Feature=\"ib hdr\"\nNodeName=gpu01 CPUs=32 Gres=gpu:4\n",
        );
    let e = run(
        &check(
            &Config,
            "/etc/slurm/slurm.conf",
            vec![(
                "settings",
                settings(&[
                    ("ProctrackType", is("proctrack/cgroup")),
                    ("clustername", is("hpc")),
                    ("NodeName[gpu01].Gres", is("gpu:4")),
                    ("NodeName[node[01-04]].Feature", is("ib hdr")),
                    ("PartitionName[batch].MaxTime", is("INFINITE")),
                    ("NodeName[gpu02]", is("gpu02")),
                ]),
            )],
        ),
        &t,
    );
    let r = results(&e);
    assert_eq!(
        r[0].2,
        "ProctrackType: expected proctrack/cgroup, got proctrack/cgroup (/etc/slurm/slurm.conf:4)"
    );
    assert_eq!(r[1].1, Pass);
    assert_eq!(
        r[2].2,
        "NodeName[gpu01].Gres: expected gpu:4, got gpu:4 (/etc/slurm/nodes.conf:2)"
    );
    assert_eq!(r[3].1, Pass);
    assert_eq!(
        r[4].2,
        "PartitionName[batch].MaxTime: expected INFINITE, got INFINITE (/etc/slurm/slurm.conf:6)"
    );
    assert_eq!(r[5].1, Fail);
    let t = MemoryTarget::new().file(
        "/etc/slurm/slurm.conf",
        0o644,
        0,
        0,
        "ClusterName=x\nthis is not slurm\n",
    );
    let e = run(
        &check(
            &Config,
            "/etc/slurm/slurm.conf",
            vec![("settings", settings(&[("ClusterName", is("x"))]))],
        ),
        &t,
    );
    assert_eq!(
        result(&e, "settings"),
        (Error, "settings: /etc/slurm/slurm.conf:2: expected Key=Value pairs, got \"this is not slurm\"".into())
    );
}

#[test]
fn ini_and_keyvalue_by_path_or_format() {
    let t = MemoryTarget::new()
        .file(
            "/etc/yum.repos.d/epel.repo",
            0o644,
            0,
            0,
            "[epel]\nenabled=1\ngpgcheck=1\n",
        )
        .file(
            "/etc/munge/munge.env",
            0o644,
            0,
            0,
            "[x]\nOPTIONS=\"--num-threads=2\"\n",
        );
    let e = run(
        &check(
            &Config,
            "/etc/yum.repos.d/epel.repo",
            vec![("settings", settings(&[("epel.gpgcheck", is("1"))]))],
        ),
        &t,
    );
    assert_eq!(result(&e, "settings.epel.gpgcheck").0, Pass);
    let e = run(
        &check(
            &Config,
            "/etc/munge/munge.env",
            vec![
                ("format", s("ini")),
                (
                    "settings",
                    settings(&[("x.OPTIONS", is("\"--num-threads=2\""))]),
                ),
            ],
        ),
        &t,
    );
    assert_eq!(
        result(&e, "settings.x.OPTIONS").0,
        Pass,
        "{:?}",
        e.properties
    );
}

fn eval_at(t: &MemoryTarget, path: &str, items: &[(&str, Pred)]) -> Evaluation {
    run(
        &check(&Config, path, vec![("settings", settings(items))]),
        t,
    )
}

#[test]
fn apptainer_keys_hold_spaces_and_repeated_keys_keep_every_value() {
    let conf = "# Apptainer\nallow setuid = no\nmount  hostfs = yes\nbind path = /etc/localtime\n\
                bind path = /etc/hosts\nsessiondir max size = 16\n";
    let t = MemoryTarget::new().file("/etc/apptainer/apptainer.conf", 0o644, 0, 0, conf);
    let e = eval_at(
        &t,
        "/etc/apptainer/apptainer.conf",
        &[
            ("allow setuid", is("no")),
            ("mount hostfs", is("no")),
            (
                "bind path",
                Pred::Matches(regex::Regex::new("(?m)^/etc/hosts$").unwrap()),
            ),
            ("Sessiondir Max Size", is("16")),
            ("allow pid ns", is("yes")),
        ],
    );
    let r = results(&e);
    assert_eq!(
        r[0],
        (
            "settings.allow setuid".into(),
            Pass,
            "allow setuid: expected no, got no (/etc/apptainer/apptainer.conf:2)".into()
        )
    );
    assert_eq!(
        r[1].2,
        "mount hostfs: expected no, got yes (/etc/apptainer/apptainer.conf:3)"
    );
    assert_eq!(r[1].1, Fail);
    assert_eq!(r[2].1, Pass, "{}", r[2].2);
    assert_eq!(r[3].1, Pass);
    assert_eq!(
        (r[4].1, r[4].2.as_str()),
        (
            Fail,
            "allow pid ns: expected yes, but it is not set in /etc/apptainer/apptainer.conf"
        )
    );
    let t = MemoryTarget::new().file(
        "/etc/singularity/singularity.conf",
        0o644,
        0,
        0,
        "allow suid\n",
    );
    let e = eval_at(
        &t,
        "/etc/singularity/singularity.conf",
        &[("allow suid", is("no"))],
    );
    assert_eq!(
        result(&e, "settings"),
        (
            Error,
            "settings: /etc/singularity/singularity.conf:1: expected `key = value`, got \"allow suid\""
                .into()
        )
    );
}

#[test]
fn gres_conf_lines_are_records_and_hostlists_expand() {
    let gres = "AutoDetect=off\nNodeName=gpu[01-02] Name=gpu Type=a100 File=/dev/nvidia0\n\
                NodeName=gpu[01-02] Name=gpu Type=a100 File=/dev/nvidia1\n\
                NodeName=gpu02 Name=mps Count=200\nName=shard Count=8\n";
    let t = MemoryTarget::new().file("/etc/slurm/gres.conf", 0o644, 0, 0, gres);
    let m = |s: &str| Pred::Matches(regex::Regex::new(s).unwrap());
    let e = eval_at(
        &t,
        "/etc/slurm/gres.conf",
        &[
            ("NodeName[gpu01].File", m("(?m)^/dev/nvidia1$")),
            ("NodeName[gpu02].File", is("/dev/nvidia0\n/dev/nvidia1")),
            ("NodeName[gpu02].Name", m("(?m)^mps$")),
            ("NodeName[gpu01].Name", m("(?m)^mps$")),
            ("NodeName[gpu03]", is("gpu03")),
            ("autodetect", is("off")),
            ("Count", is("8")),
        ],
    );
    let r: Vec<_> = results(&e).into_iter().map(|(_, s, m)| (s, m)).collect();
    assert_eq!(r[0].0, Pass, "{}", r[0].1);
    assert_eq!(r[1].0, Pass, "{}", r[1].1);
    assert!(r[1].1.ends_with("(/etc/slurm/gres.conf:2)"), "{}", r[1].1);
    assert_eq!(r[2].0, Pass, "{}", r[2].1);
    assert_eq!(r[3].0, Fail, "gpu01 has no mps: {}", r[3].1);
    assert_eq!(r[4].0, Fail);
    assert_eq!(r[5].0, Pass);
    assert_eq!(r[6].0, Pass);
}

#[test]
fn plugstack_plugins_and_includes() {
    let t = MemoryTarget::new()
        .file(
            "/etc/slurm/plugstack.conf",
            0o644,
            0,
            0,
            "# SPANK\ninclude /etc/slurm/plugstack.conf.d/*.conf\noptional /usr/lib/slurm/x11.so\n",
        )
        .file(
            "/etc/slurm/plugstack.conf.d/container.conf",
            0o644,
            0,
            0,
            "required /usr/lib/x86_64-linux-gnu/slurm-wlm/container_singularity.so runtime=/usr/bin/apptainer\n",
        );
    let e = eval_at(
        &t,
        "/etc/slurm/plugstack.conf",
        &[
            ("container_singularity.so", is("required")),
            (
                "container_singularity.so.args",
                is("runtime=/usr/bin/apptainer"),
            ),
            ("/usr/lib/slurm/x11.so", is("optional")),
            ("x11.so", is("required")),
        ],
    );
    let r = results(&e);
    assert_eq!(
        r[0].2,
        "container_singularity.so: expected required, got required (/etc/slurm/plugstack.conf.d/container.conf:1)"
    );
    assert_eq!([r[0].1, r[1].1, r[2].1, r[3].1], [Pass, Pass, Pass, Fail]);
    let t = MemoryTarget::new().file("/etc/slurm/plugstack.conf", 0o644, 0, 0, "requird /x.so\n");
    let e = eval_at(&t, "/etc/slurm/plugstack.conf", &[("x.so", is("required"))]);
    assert!(
        result(&e, "settings")
            .1
            .starts_with("settings: /etc/slurm/plugstack.conf:1: expected `required PLUGIN`"),
        "{:?}",
        results(&e)
    );
}

#[test]
fn when_unset_pass_judges_only_written_values() {
    let stock = |extra: &[(&str, &str)]| {
        let mut t = MemoryTarget::new().file(
            "/etc/ssh/sshd_config",
            0o644,
            0,
            0,
            "Include /etc/ssh/sshd_config.d/*.conf\nUsePAM yes\n",
        );
        for (p, text) in extra {
            t = t.file(p, 0o644, 0, 0, *text);
        }
        t
    };
    let t = stock(&[]);
    let run_with = |t: &MemoryTarget, when: &str| {
        run(
            &check(
                &Config,
                "/etc/ssh/sshd_config",
                vec![
                    (
                        "settings",
                        settings(&[("PasswordAuthentication", is("no"))]),
                    ),
                    ("when_unset", s(when)),
                ],
            ),
            t,
        )
    };
    // Stock: unset, so sshd's default yes fails, and `pass` passes.
    assert_eq!(
        result(&run_with(&t, "default"), "settings.PasswordAuthentication").0,
        Fail
    );
    assert_eq!(
        result(&run_with(&t, "fail"), "settings.PasswordAuthentication").0,
        Fail
    );
    let (status, msg) = result(&run_with(&t, "pass"), "settings.PasswordAuthentication");
    assert_eq!(status, Pass, "{msg}");
    // Written `yes` fails whatever when_unset says.
    let t = stock(&[(
        "/etc/ssh/sshd_config.d/50-site.conf",
        "PasswordAuthentication yes\n",
    )]);
    let (status, msg) = result(&run_with(&t, "pass"), "settings.PasswordAuthentication");
    assert_eq!(
        (status, msg.as_str()),
        (
            Fail,
            "PasswordAuthentication: expected no, got yes (/etc/ssh/sshd_config.d/50-site.conf:1)"
        )
    );
}
