use super::*;
use crate::testing::*;
use nodecheck_core::outcome::Status::{Error, Fail, Pass, Skip};
use nodecheck_core::target::{MemoryTarget, TargetKind};

const MUNGE: &str = "[Unit]\nDescription=MUNGE\n\n[Service]\nType=forking\nExecStart=/usr/sbin/munged\n\n\
                     [Install]\nWantedBy=multi-user.target\n";
const SSH: &str = "[Unit]\nDescription=OpenBSD Secure Shell server\n[Service]\nExecStart=/usr/sbin/sshd -D\n\
                   [Install]\nWantedBy=multi-user.target\nAlias=sshd.service\n";
const GETTY: &str = "[Unit]\nDescription=Getty on %I\n[Service]\nExecStart=-/sbin/agetty %I\n\
                     [Install]\nWantedBy=getty.target\nDefaultInstance=tty1\n";

/// A Debian-like image: units in /lib/systemd/system, enabled by links in
/// /etc/systemd/system.
fn image() -> MemoryTarget {
    MemoryTarget::new()
        .file("/lib/systemd/system/munge.service", 0o644, 0, 0, MUNGE)
        .file("/lib/systemd/system/ssh.service", 0o644, 0, 0, SSH)
        .file("/lib/systemd/system/getty@.service", 0o644, 0, 0, GETTY)
        .file(
            "/lib/systemd/system/systemd-fsck@.service",
            0o644,
            0,
            0,
            "[Unit]\nDescription=fsck\n[Service]\nType=oneshot\n",
        )
        .file(
            "/lib/systemd/system/cups.service",
            0o644,
            0,
            0,
            "[Service]\nExecStart=/x\n[Install]\nAlso=cups.socket\n",
        )
        .file(
            "/lib/systemd/system/cups.socket",
            0o644,
            0,
            0,
            "[Socket]\nListenStream=631\n[Install]\nWantedBy=sockets.target\n",
        )
        .symlink(
            "/etc/systemd/system/multi-user.target.wants/munge.service",
            "/lib/systemd/system/munge.service",
        )
        .symlink(
            "/etc/systemd/system/multi-user.target.wants/ssh.service",
            "/lib/systemd/system/ssh.service",
        )
        .symlink(
            "/etc/systemd/system/sshd.service",
            "/lib/systemd/system/ssh.service",
        )
        .symlink(
            "/etc/systemd/system/getty.target.wants/getty@tty1.service",
            "/lib/systemd/system/getty@.service",
        )
        .special("/dev/null", FileType::Char, 0o666, 0, 0)
}

fn eval_on(
    t: &MemoryTarget,
    name: &str,
    props: Vec<(&str, nodecheck_core::profile::Value)>,
) -> Evaluation {
    run(&check(&Service, name, props), t)
}

#[test]
fn enabled_units_pass_with_the_link_named() {
    let t = image();
    for name in [
        "munge",
        "munge.service",
        "ssh",
        "sshd",
        "getty@tty1.service",
    ] {
        let e = eval_on(
            &t,
            name,
            vec![
                ("exists", b(true)),
                ("enabled", b(true)),
                ("masked", b(false)),
            ],
        );
        assert!(
            e.properties.iter().all(|p| p.status == Pass),
            "{name}: {:#?}",
            e.properties
        );
    }
    let e = eval_on(&t, "sshd", vec![("enabled", b(true))]);
    assert_eq!(
        result(&e, "enabled").1,
        "enabled: expected true, got true (enabled by /etc/systemd/system/multi-user.target.wants/ssh.service)"
    );
    assert!(
        e.output
            .contains("unit sshd.service: /lib/systemd/system/ssh.service (alias of ssh.service)"),
        "{}",
        e.output
    );
    let e = eval_on(&t, "getty@tty2", vec![("enabled", b(true))]);
    assert_eq!(result(&e, "enabled").0, Fail);
}

#[test]
fn a_disabled_unit_fails_naming_the_missing_link() {
    let t = MemoryTarget::new().file("/usr/lib/systemd/system/munge.service", 0o644, 0, 0, MUNGE);
    let e = eval_on(&t, "munge", vec![("enabled", b(true))]);
    assert_eq!(
        results(&e),
        [(
            "enabled".into(),
            Fail,
            "enabled: expected true, got false (disabled: WantedBy=multi-user.target, but no \
             /etc/systemd/system/multi-user.target.wants/munge.service link)"
                .into()
        )]
    );
    let e = eval_on(&t, "munge", vec![("enabled", b(false))]);
    assert_eq!(result(&e, "enabled").0, Pass);
}

#[test]
fn an_alias_without_its_link_is_still_the_unit() {
    // `systemctl disable ssh` removes both links; `sshd` still names ssh.service.
    let t = MemoryTarget::new().file("/lib/systemd/system/ssh.service", 0o644, 0, 0, SSH);
    let e = eval_on(&t, "sshd", vec![("exists", b(true)), ("enabled", b(true))]);
    assert_eq!(result(&e, "exists").0, Pass, "{:?}", e.properties);
    assert_eq!(
        result(&e, "enabled").1,
        "enabled: expected true, got false (disabled: WantedBy=multi-user.target, Alias=sshd.service, \
         but no /etc/systemd/system/multi-user.target.wants/ssh.service link)"
    );
}

#[test]
fn vendor_wants_links_do_not_enable_as_in_systemctl() {
    let t = MemoryTarget::new()
        .file("/usr/lib/systemd/system/munge.service", 0o644, 0, 0, MUNGE)
        .symlink(
            "/usr/lib/systemd/system/initrd-root-device.target.wants/munge.service",
            "../munge.service",
        );
    let e = eval_on(&t, "munge", vec![("enabled", b(true))]);
    assert_eq!(result(&e, "enabled").0, Fail, "{:?}", e.properties);
}

#[test]
fn a_masked_unit_is_masked_and_not_enabled() {
    let t = image().symlink("/etc/systemd/system/munge.service", "/dev/null");
    let e = eval_on(
        &t,
        "munge",
        vec![
            ("exists", b(true)),
            ("masked", b(false)),
            ("enabled", b(true)),
        ],
    );
    assert_eq!(
        results(&e),
        [
            (
                "exists".into(),
                Pass,
                "exists: service munge.service exists (masked by /etc/systemd/system/munge.service)".into()
            ),
            (
                "masked".into(),
                Fail,
                "masked: expected false, got true (/etc/systemd/system/munge.service -> /dev/null)".into()
            ),
            (
                "enabled".into(),
                Fail,
                "enabled: expected true, got false (masked by /etc/systemd/system/munge.service)".into()
            ),
        ]
    );
    // An empty file masks too.
    let t = image().file("/etc/systemd/system/ssh.service", 0o644, 0, 0, "");
    let e = eval_on(&t, "ssh", vec![("masked", b(true))]);
    assert_eq!(result(&e, "masked").0, Pass);
}

#[test]
fn static_and_indirect_units() {
    let t = image();
    let e = eval_on(&t, "systemd-fsck@sda1.service", vec![("enabled", b(true))]);
    assert_eq!(result(&e, "enabled").0, Pass, "{:?}", e.properties);
    assert!(result(&e, "enabled").1.contains("static"));
    let e = eval_on(&t, "cups", vec![("enabled", b(true))]);
    assert_eq!(
        result(&e, "enabled").1,
        "enabled: expected true, got false (indirect, and no Also= unit is enabled (cups.socket: \
         disabled: WantedBy=sockets.target, but no /etc/systemd/system/sockets.target.wants/cups.socket link))"
    );
    let t = t.symlink(
        "/etc/systemd/system/sockets.target.wants/cups.socket",
        "/lib/systemd/system/cups.socket",
    );
    let e = eval_on(&t, "cups", vec![("enabled", b(true))]);
    assert_eq!(result(&e, "enabled").0, Pass);
}

#[test]
fn missing_units_name_dangling_links() {
    let t = image().symlink(
        "/etc/systemd/system/multi-user.target.wants/slurmd.service",
        "/lib/systemd/system/slurmd.service",
    );
    let e = eval_on(&t, "slurmd", vec![("enabled", b(true))]);
    assert_eq!(
        results(&e),
        [
            (
                "exists".into(),
                Fail,
                "exists: service slurmd.service does not exist \
                 (/etc/systemd/system/multi-user.target.wants/slurmd.service links to it \
                 (/lib/systemd/system/slurmd.service))"
                    .into()
            ),
            (
                "enabled".into(),
                Skip,
                "service slurmd.service does not exist".into()
            ),
        ]
    );
    let t = image().symlink(
        "/etc/systemd/system/slurmctld.service",
        "/opt/slurm/slurmctld.service",
    );
    let e = eval_on(&t, "slurmctld", vec![("exists", b(true))]);
    assert_eq!(
        result(&e, "exists").1,
        "exists: service slurmctld.service does not exist (/etc/systemd/system/slurmctld.service \
         links to /opt/slurm/slurmctld.service, which does not exist)"
    );
    let e = eval_on(&t, "telnet", vec![("exists", b(false))]);
    assert_eq!(result(&e, "exists").0, Pass);
}

#[test]
fn garbage_unit_files_are_errors_naming_file_and_line() {
    let t = image().file(
        "/lib/systemd/system/munge.service",
        0o644,
        0,
        0,
        "[Unit]\nDescription=x\nrm -rf /\n",
    );
    let e = eval_on(&t, "munge", vec![("exists", b(true)), ("enabled", b(true))]);
    assert_eq!(result(&e, "exists").0, Pass);
    assert_eq!(
        result(&e, "enabled"),
        (
            Error,
            "enabled: /lib/systemd/system/munge.service:3: expected Key=Value or [Section], got \"rm -rf /\"".into()
        )
    );
    let t = image().file(
        "/lib/systemd/system/munge.service",
        0o644,
        0,
        0,
        b"\x7fELF\x02\x01\0\0\xff",
    );
    let e = eval_on(&t, "munge", vec![("enabled", b(true))]);
    assert_eq!(result(&e, "enabled").0, Error);
    assert!(
        result(&e, "enabled")
            .1
            .contains("/lib/systemd/system/munge.service")
    );
}

#[test]
fn sysv_scripts_are_reported_as_such() {
    let t = MemoryTarget::new()
        .file("/etc/init.d/gmond", 0o755, 0, 0, "#!/bin/sh\n")
        .symlink("/etc/rc2.d/S01gmond", "../init.d/gmond");
    let e = eval_on(&t, "gmond", vec![("exists", b(true)), ("enabled", b(true))]);
    assert_eq!(
        results(&e),
        [
            ("exists".into(), Pass, "exists: service gmond.service exists (SysV init script /etc/init.d/gmond)".into()),
            (
                "enabled".into(),
                Pass,
                "enabled: expected true, got true (SysV script /etc/init.d/gmond, started by /etc/rc2.d/S01gmond)".into()
            ),
        ]
    );
}

#[test]
fn higher_directories_win_and_dropins_are_listed() {
    let t = image()
        .file(
            "/etc/systemd/system/munge.service",
            0o644,
            0,
            0,
            "[Service]\nExecStart=/x\n",
        )
        .file(
            "/etc/systemd/system/munge.service.d/override.conf",
            0o644,
            0,
            0,
            "[Service]\nNice=5\n",
        )
        .file(
            "/lib/systemd/system/service.d/10-timeout.conf",
            0o644,
            0,
            0,
            "[Service]\nTimeoutSec=5\n",
        );
    let e = eval_on(&t, "munge", vec![("enabled", b(true))]);
    // The /etc copy has no [Install]: static, and it is what systemd loads.
    assert!(
        result(&e, "enabled")
            .1
            .contains("enabled by /etc/systemd/system/multi-user.target.wants/munge.service")
    );
    assert_eq!(
        e.output,
        "unit munge.service: /etc/systemd/system/munge.service\n\
         drop-in /lib/systemd/system/service.d/10-timeout.conf\n\
         drop-in /etc/systemd/system/munge.service.d/override.conf\n\
         enabled: true (enabled by /etc/systemd/system/multi-user.target.wants/munge.service)\n"
    );
}

#[test]
fn active_reads_the_control_group_on_a_live_node() {
    let live = image()
        .kind(TargetKind::Live)
        .with(Need::Live)
        .dir("/run/systemd/system", 0o755, 0, 0)
        .file(
            "/sys/fs/cgroup/cgroup.controllers",
            0o444,
            0,
            0,
            "cpu memory\n",
        )
        .file(
            "/sys/fs/cgroup/system.slice/munge.service/cgroup.events",
            0o444,
            0,
            0,
            "populated 1\nfrozen 0\n",
        )
        .file(
            "/sys/fs/cgroup/system.slice/ssh.service/cgroup.events",
            0o444,
            0,
            0,
            "populated 0\nfrozen 0\n",
        );
    let e = eval_on(&live, "munge", vec![("active", b(true))]);
    assert_eq!(
        result(&e, "active"),
        (Pass, "active: expected true, got true (/sys/fs/cgroup/system.slice/munge.service/cgroup.events: populated 1)".into())
    );
    let e = eval_on(&live, "sshd", vec![("active", b(true))]);
    assert_eq!(result(&e, "active").0, Fail);
    let e = eval_on(&live, "getty@tty1", vec![("active", b(true))]);
    assert_eq!(
        result(&e, "active").1,
        "active: expected true, got false (no control group for getty@tty1.service)"
    );
    let no_systemd = image().kind(TargetKind::Live).with(Need::Live);
    let e = eval_on(&no_systemd, "munge", vec![("active", b(true))]);
    assert_eq!(
        result(&e, "active"),
        (
            Skip,
            "systemd is not running on this node (no /run/systemd/system)".into()
        )
    );
}

#[test]
fn exists_false_conflicts_with_other_keys() {
    let c = check(
        &Service,
        "telnet",
        vec![("exists", b(false)), ("enabled", b(false))],
    );
    assert_eq!(Service.validate(&c).len(), 1);
}

#[test]
fn unit_names_are_validated() {
    let c = check(&Service, "../../etc/shadow", vec![("enabled", b(true))]);
    assert_eq!(
        messages(&Service.validate(&c)),
        ["bad-value: `../../etc/shadow` is not a unit name (no `/`, blanks or leading `.`)"]
    );
}

#[test]
fn an_optional_unit_is_skipped_only_when_the_image_has_none() {
    let opt = |t: &MemoryTarget, name| {
        eval_on(t, name, vec![("required", b(false)), ("enabled", b(true))])
    };
    let e = opt(&image(), "slurmd");
    assert_eq!(
        results(&e),
        [(
            "enabled".into(),
            Skip,
            "service slurmd.service is not installed (required = false)".into()
        )]
    );
    // Installed: checked as usual.
    let t = MemoryTarget::new().file("/lib/systemd/system/slurmd.service", 0o644, 0, 0, MUNGE);
    assert_eq!(result(&opt(&t, "slurmd"), "enabled").0, Fail);
    // A wants/ link to a unit that is gone is a broken image, not an
    // absent option.
    let t = MemoryTarget::new().symlink(
        "/etc/systemd/system/multi-user.target.wants/slurmd.service",
        "/lib/systemd/system/slurmd.service",
    );
    assert_ne!(result(&opt(&t, "slurmd"), "exists").0, Skip);
}
