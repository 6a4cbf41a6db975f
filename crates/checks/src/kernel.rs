//! `kernel`: the target's kernel release, and whether its module directory
//! matches its kernel image.

use nodecheck_core::kind::{Compare, Key, Kind, Ty};
use nodecheck_core::matcher::Actual;
use nodecheck_core::outcome::{Evaluation, PropertyResult};
use nodecheck_core::profile::{Check, Diagnostic};
use nodecheck_core::run::Context;
use nodecheck_core::target::{FileType, Target, TargetKind};

use crate::eval;
use crate::kmod::kernels::{Choice, Kernels, running_release};
use crate::kmod::{self, Ready};

pub struct Kernel;

const KEYS: &[Key] = &[
    Key::new(
        "version",
        Ty::Matcher(Compare::Version),
        "The kernel release (`uname -r`): `\"6.1.0-28-amd64\"`, `{ ge = \"6.1.0-28\" }`, \
         `{ matches = \"\\\\.el9\" }`.",
    ),
    Key::new(
        "modules_dir",
        Ty::Bool,
        "Kernel images and module directories match: each image has its \
         `/lib/modules/RELEASE` with a `modules.dep`, and each module directory has its image. \
         Live: the running kernel has its module directory.",
    ),
    Key::new(
        "modules_consistent",
        Ty::Bool,
        "`true`: each kernel's module tree agrees with its depmod index: every module file on \
         disk is in `modules.dep` (none installed without running depmod) and every file \
         `modules.dep` lists exists. `false` is refused.",
    ),
];

const DOC: &str = r#"## What it checks

The kernel of the target. On a root filesystem the kernels are the images
in `/boot` (`vmlinuz-RELEASE`, `vmlinux-RELEASE`, `Image-RELEASE`; RHEL's
`vmlinuz-0-rescue-*` is not a kernel of its own, nor is a name that is not
a release, like Arch's `vmlinuz-linux`) and in the module
directories (`/lib/modules/RELEASE/vmlinuz`, where RHEL, Fedora, SUSE and
Arch install it), and the module directories `/lib/modules/RELEASE` (or
`/usr/lib/modules/RELEASE`). On a live node the kernel is the running one
(`/proc/sys/kernel/osrelease`, what `uname -r` prints).

`release` picks a kernel by its release. Without it, `version` looks at the
only kernel of a rootfs (the only image; with no image, the only module
directory) or the running kernel of a live node; a rootfs with several
kernels is an *error* listing them, so a profile never checks the wrong one
by accident.

`modules_dir` catches the "modules missing after a kernel update"
incident. On a rootfs without `release` it looks at every kernel: each image
needs its module directory, with a `modules.dep` (depmod ran), and each
module directory needs its image (a leftover of a removed kernel, or a
directory renamed to another release, fails). With `release`, only that
kernel. On a live node: the running kernel has its module directory, with a
`modules.dep` (a stateless node may boot its kernel over the network, so no
image is required there).

`modules_consistent` checks each kernel's module tree against its depmod
index (every kernel with a module directory; with `release`, that one; on
a live node, the running one): every module file on disk (`.ko`, `.ko.xz`,
`.ko.zst`, `.ko.gz`, links in `weak-updates/` included) must be listed in
`modules.dep`, since modprobe cannot find a module copied in without
running depmod, and every file `modules.dep` lists must exist. The failure
names the files (the first 10; all of them in the check's output).

## Example

```toml
[[control]]
id = "kernel"
title = "The image boots the expected kernel, with its modules"

  [[control.kernel]]
  version            = { ge = "6.1.0-28" }
  modules_dir        = true
  modules_consistent = true

[[control]]
id = "kernel-el9"

  [[control.kernel]]
  release     = "5.14.0-427.el9.x86_64"
  modules_dir = true
```

## Targets

Every target: a rootfs from its files, a live node from the running kernel.
"#;

impl Kind for Kernel {
    fn name(&self) -> &'static str {
        "kernel"
    }

    fn subject(&self) -> Key {
        Key::new(
            "release",
            Ty::Str,
            "Which kernel (`6.1.0-28-amd64`, a /lib/modules directory name). Default: the \
             target's only kernel, or the running one on a live node.",
        )
    }

    fn default_subject(&self) -> Option<&'static str> {
        Some("")
    }

    fn keys(&self) -> &'static [Key] {
        KEYS
    }

    fn doc(&self) -> &'static str {
        DOC
    }

    fn validate(&self, check: &Check) -> Vec<Diagnostic> {
        if check.bool("modules_consistent") == Some(false) {
            return vec![eval::diagnostic(
                check,
                "modules_consistent",
                "bad-value",
                "`modules_consistent = false` asserts nothing; write `modules_consistent = true`"
                    .to_string(),
            )];
        }
        Vec::new()
    }

    fn eval(&self, check: &Check, cx: &Context<'_>) -> Evaluation {
        let t = cx.target;
        let wanted = (!check.subject.is_empty()).then_some(check.subject.as_str());
        let kernels = Kernels::scan(t);
        let mut out = Evaluation::default();
        for p in eval::asserted(check, &[]) {
            match p.key {
                "version" => out.push(version(check, t, &kernels, wanted)),
                "modules_dir" => out.push(modules_dir(check, t, &kernels, wanted)),
                "modules_consistent" => {
                    let r = modules_consistent(t, &kernels, wanted, &mut out.output);
                    out.push(r);
                }
                _ => {}
            }
        }
        out
    }
}

fn version(
    check: &Check,
    t: &dyn Target,
    kernels: &Kernels,
    wanted: Option<&str>,
) -> PropertyResult {
    let Some(m) = check.matcher("version") else {
        return PropertyResult::error("version", "version: not a matcher (a bug in nodecheck)");
    };
    let release = match (t.kind(), wanted) {
        (TargetKind::Live, None) => running_release(t).map_err(Choice::Error),
        _ => kernels.choose(t, wanted),
    };
    match release {
        Ok(r) => eval::matched("version", m, Actual::Str(&r), r.clone()),
        Err(c @ (Choice::NoKernel | Choice::Unknown { .. })) => PropertyResult::compare(
            "version",
            false,
            m.describe(),
            format!("no kernel ({})", c.message("release")),
        ),
        Err(c) => PropertyResult::error("version", format!("version: {}", c.message("release"))),
    }
}

/// What is wrong with one kernel's pair of image and module directory.
fn pair_problems(
    t: &dyn Target,
    kernels: &Kernels,
    release: &str,
    need_image: bool,
) -> Result<Vec<String>, String> {
    let mut problems = Vec::new();
    match kernels.dirs.get(release) {
        None => problems.push(format!(
            "kernel {release} has no module directory (/lib/modules/{release} is missing)"
        )),
        Some(dir) => {
            let dep = format!("{dir}/modules.dep");
            match t.metadata(&dep, true) {
                Ok(m) if m.file_type == FileType::File => {}
                Ok(_) => problems.push(format!("{dep} is not a file")),
                Err(e) if eval::is_absent(&e) => problems.push(format!(
                    "{dir} has no modules.dep: depmod never ran for {release}"
                )),
                Err(e) => return Err(format!("cannot stat {dep}: {}", eval::io_text(&e))),
            }
        }
    }
    if need_image && !kernels.images.contains_key(release) {
        let dir = kernels.dirs.get(release).map_or("", String::as_str);
        problems.push(format!(
            "{dir} has no kernel image (no /boot/vmlinuz-{release}): a leftover of a removed kernel, or named for the wrong release"
        ));
    }
    Ok(problems)
}

fn modules_dir(
    check: &Check,
    t: &dyn Target,
    kernels: &Kernels,
    wanted: Option<&str>,
) -> PropertyResult {
    let expected = check.bool("modules_dir").unwrap_or(true);
    let live = t.kind() == TargetKind::Live;
    let releases: Vec<String> = match (live, wanted) {
        (true, None) => match running_release(t) {
            Ok(r) => vec![r],
            Err(e) => return PropertyResult::error("modules_dir", format!("modules_dir: {e}")),
        },
        (_, Some(w)) => {
            if !live && !kernels.images.contains_key(w) && !kernels.dirs.contains_key(w) {
                let c = Choice::Unknown {
                    wanted: w.to_string(),
                    have: kernels.releases(),
                };
                return eval::boolean("modules_dir", expected, false, &c.message("release"));
            }
            vec![w.to_string()]
        }
        (false, None) => {
            if let Some(e) = kernels.errors.first() {
                return PropertyResult::error("modules_dir", format!("modules_dir: {e}"));
            }
            kernels.releases()
        }
    };
    if releases.is_empty() {
        return eval::boolean(
            "modules_dir",
            expected,
            false,
            &Choice::NoKernel.message("release"),
        );
    }
    let mut problems = Vec::new();
    for r in &releases {
        match pair_problems(t, kernels, r, !live) {
            Ok(p) => problems.extend(p),
            Err(e) => return PropertyResult::error("modules_dir", format!("modules_dir: {e}")),
        }
    }
    if problems.is_empty() {
        let pairs: Vec<String> = releases
            .iter()
            .map(|r| match kernels.images.get(r) {
                Some(image) if !live => format!("{image} ↔ {}", kernels.dirs[r]),
                _ => format!("{r} ↔ {}", kernels.dirs[r]),
            })
            .collect();
        eval::boolean("modules_dir", expected, true, &pairs.join(", "))
    } else {
        eval::boolean("modules_dir", expected, false, &problems.join("; "))
    }
}

/// `modules_consistent`: each kernel's module files and modules.dep agree.
fn modules_consistent(
    t: &dyn Target,
    kernels: &Kernels,
    wanted: Option<&str>,
    output: &mut String,
) -> PropertyResult {
    const KEY: &str = "modules_consistent";
    let releases: Vec<String> = match (t.kind(), wanted) {
        (_, Some(w)) => vec![w.to_string()],
        (TargetKind::Live, None) => match running_release(t) {
            Ok(r) => vec![r],
            Err(e) => return PropertyResult::error(KEY, format!("{KEY}: {e}")),
        },
        (_, None) => kernels.dirs.keys().cloned().collect(),
    };
    if releases.is_empty() {
        return eval::boolean(KEY, true, false, &Choice::NoKernel.message("release"));
    }
    let mut problems = Vec::new();
    let mut good = Vec::new();
    for r in &releases {
        let index = match kmod::open(t, Some(r), "release") {
            Ready::Index(i) => i,
            Ready::Absent(why) => {
                problems.push(why);
                continue;
            }
            Ready::Error(why) => return PropertyResult::error(KEY, format!("{KEY}: {why}")),
        };
        let c = index.consistency(t);
        if !c.errors.is_empty() {
            return PropertyResult::error(
                KEY,
                format!("{KEY}: cannot look at {}", eval::capped(&c.errors)),
            );
        }
        if !c.unlisted.is_empty() {
            eval::section(
                output,
                &format!("module files of {r} that modules.dep does not list"),
                &c.unlisted,
            );
            problems.push(format!(
                "{} module file{} of {r} not in modules.dep (installed without running `depmod {r}`: modprobe cannot find {}): {}",
                c.unlisted.len(),
                if c.unlisted.len() == 1 { "" } else { "s" },
                if c.unlisted.len() == 1 { "it" } else { "them" },
                eval::capped(&c.unlisted)
            ));
        }
        if !c.missing.is_empty() {
            eval::section(
                output,
                &format!("files modules.dep of {r} lists that are missing"),
                &c.missing,
            );
            problems.push(format!(
                "{} file{} modules.dep of {r} lists {} missing: {}",
                c.missing.len(),
                if c.missing.len() == 1 { "" } else { "s" },
                if c.missing.len() == 1 { "is" } else { "are" },
                eval::capped(&c.missing)
            ));
        }
        if c.unlisted.is_empty() && c.missing.is_empty() {
            good.push(format!(
                "{r}: {} modules, all on disk and in modules.dep",
                c.listed
            ));
        }
    }
    if problems.is_empty() {
        eval::boolean(KEY, true, true, &good.join("; "))
    } else {
        eval::boolean(KEY, true, false, &problems.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use nodecheck_core::outcome::Status;
    use nodecheck_core::target::{MemoryTarget, Need};

    use super::Kernel;
    use crate::testing::*;

    fn image(releases_with_modules: &[&str], images: &[&str]) -> MemoryTarget {
        let mut t = MemoryTarget::new().symlink("/lib", "usr/lib");
        for r in images {
            t = t.file(&format!("/boot/vmlinuz-{r}"), 0o644, 0, 0, "MZ");
        }
        for r in releases_with_modules {
            t = t.file(
                &format!("/usr/lib/modules/{r}/modules.dep"),
                0o644,
                0,
                0,
                "",
            );
        }
        t
    }

    #[test]
    fn version_of_the_single_kernel() {
        let t = image(&["6.1.0-28-amd64"], &["6.1.0-28-amd64"]);
        let e = run(
            &check(
                &Kernel,
                "",
                vec![(
                    "version",
                    preds(vec![nodecheck_core::matcher::Pred::Ge("6.1.0-9".into())]),
                )],
            ),
            &t,
        );
        assert_eq!(
            result(&e, "version"),
            (
                Status::Pass,
                "version: expected >= 6.1.0-9, got 6.1.0-28-amd64".into()
            )
        );
        let e = run(
            &check(&Kernel, "", vec![("version", eq("6.1.0-9-amd64"))]),
            &t,
        );
        assert_eq!(
            result(&e, "version"),
            (
                Status::Fail,
                "version: expected 6.1.0-9-amd64, got 6.1.0-28-amd64".into()
            )
        );
        // Several: an error listing them; `release` picks one.
        let t = image(
            &["6.1.0-28-amd64", "6.1.0-9-amd64"],
            &["6.1.0-28-amd64", "6.1.0-9-amd64"],
        );
        let e = run(
            &check(&Kernel, "", vec![("version", eq("6.1.0-9-amd64"))]),
            &t,
        );
        assert_eq!(
            result(&e, "version"),
            (
                Status::Error,
                "version: the target has several kernels (6.1.0-9-amd64, 6.1.0-28-amd64): say which with `release = \"6.1.0-28-amd64\"`".into()
            )
        );
        let e = run(
            &check(
                &Kernel,
                "6.1.0-9-amd64",
                vec![("version", eq("6.1.0-9-amd64"))],
            ),
            &t,
        );
        assert_eq!(result(&e, "version").0, Status::Pass);
        let e = run(
            &check(&Kernel, "", vec![("version", eq("6"))]),
            &MemoryTarget::new(),
        );
        assert_eq!(result(&e, "version").0, Status::Fail);
    }

    #[test]
    fn modules_dir_matches_images_both_ways() {
        let t = image(&["6.1.0-28-amd64"], &["6.1.0-28-amd64"]);
        let e = run(&check(&Kernel, "", vec![("modules_dir", b(true))]), &t);
        assert_eq!(
            result(&e, "modules_dir"),
            (
                Status::Pass,
                "modules_dir: expected true, got true (/boot/vmlinuz-6.1.0-28-amd64 ↔ /lib/modules/6.1.0-28-amd64)".into()
            )
        );
        // The module directory renamed to another release.
        let t = image(&["6.1.0-99-amd64"], &["6.1.0-28-amd64"]);
        let e = run(&check(&Kernel, "", vec![("modules_dir", b(true))]), &t);
        assert_eq!(
            result(&e, "modules_dir"),
            (
                Status::Fail,
                "modules_dir: expected true, got false (kernel 6.1.0-28-amd64 has no module directory (/lib/modules/6.1.0-28-amd64 is missing); /lib/modules/6.1.0-99-amd64 has no kernel image (no /boot/vmlinuz-6.1.0-99-amd64): a leftover of a removed kernel, or named for the wrong release)".into()
            )
        );
        // depmod never ran.
        let t = image(&[], &["6.1.0-28-amd64"]).dir(
            "/usr/lib/modules/6.1.0-28-amd64/kernel",
            0o755,
            0,
            0,
        );
        let e = run(&check(&Kernel, "", vec![("modules_dir", b(true))]), &t);
        assert_eq!(
            result(&e, "modules_dir").1,
            "modules_dir: expected true, got false (/lib/modules/6.1.0-28-amd64 has no modules.dep: depmod never ran for 6.1.0-28-amd64)"
        );
        // RHEL keeps the image in the module directory.
        let t = MemoryTarget::new()
            .file(
                "/usr/lib/modules/5.14.0-427.el9.x86_64/vmlinuz",
                0o644,
                0,
                0,
                "MZ",
            )
            .file(
                "/usr/lib/modules/5.14.0-427.el9.x86_64/modules.dep",
                0o644,
                0,
                0,
                "",
            );
        let e = run(
            &check(
                &Kernel,
                "",
                vec![("modules_dir", b(true)), ("version", re("\\.el9\\."))],
            ),
            &t,
        );
        assert_eq!(result(&e, "modules_dir").0, Status::Pass);
        assert_eq!(result(&e, "version").0, Status::Pass);
        let e = run(
            &check(&Kernel, "", vec![("modules_dir", b(true))]),
            &MemoryTarget::new(),
        );
        assert_eq!(result(&e, "modules_dir").0, Status::Fail);
    }

    #[test]
    fn a_live_node_uses_uname() {
        let t = image(&["6.18.44"], &[])
            .kind(nodecheck_core::target::TargetKind::Live)
            .with(Need::Live)
            .file("/proc/sys/kernel/osrelease", 0o444, 0, 0, "6.18.44\n");
        let e = run(
            &check(
                &Kernel,
                "",
                vec![("version", eq("6.18.44")), ("modules_dir", b(true))],
            ),
            &t,
        );
        assert_eq!(result(&e, "version").0, Status::Pass);
        assert_eq!(
            result(&e, "modules_dir"),
            (
                Status::Pass,
                "modules_dir: expected true, got true (6.18.44 ↔ /lib/modules/6.18.44)".into()
            )
        );
        let t = MemoryTarget::new()
            .kind(nodecheck_core::target::TargetKind::Live)
            .file("/proc/sys/kernel/osrelease", 0o444, 0, 0, "6.18.44\n");
        let e = run(&check(&Kernel, "", vec![("modules_dir", b(true))]), &t);
        assert_eq!(
            result(&e, "modules_dir").1,
            "modules_dir: expected true, got false (kernel 6.18.44 has no module directory (/lib/modules/6.18.44 is missing))"
        );
    }

    #[test]
    fn module_trees_agree_with_modules_dep() {
        use crate::kmod::fixture::{self, DIR, FILES, Module, RELEASE, ko};
        let mods = [
            Module {
                path: "kernel/fs/xfs/xfs.ko",
                deps: &[],
                info: &[],
            },
            Module {
                path: "kernel/fs/nfs/nfs.ko",
                deps: &[],
                info: &[],
            },
        ];
        let c = || check(&Kernel, "", vec![("modules_consistent", b(true))]);
        let e = run(&c(), &fixture::image(&mods, &[]));
        assert_eq!(
            result(&e, "modules_consistent"),
            (
                Status::Pass,
                format!(
                    "modules_consistent: expected true, got true ({RELEASE}: 2 modules, all on disk and in modules.dep)"
                )
            )
        );
        let t = fixture::image_without(&mods, &[], &["kernel/fs/nfs/nfs.ko"]).file(
            &format!("{FILES}/extra/lustre.ko"),
            0o644,
            0,
            0,
            ko(&[]),
        );
        let e = run(&c(), &t);
        assert_eq!(
            result(&e, "modules_consistent"),
            (
                Status::Fail,
                format!(
                    "modules_consistent: expected true, got false (1 module file of {RELEASE} not in modules.dep \
                     (installed without running `depmod {RELEASE}`: modprobe cannot find it): {DIR}/extra/lustre.ko; \
                     1 file modules.dep of {RELEASE} lists is missing: {DIR}/kernel/fs/nfs/nfs.ko)"
                )
            )
        );
        assert!(
            e.output.contains(&format!("  {DIR}/extra/lustre.ko\n")),
            "{}",
            e.output
        );
        let bad = check(&Kernel, "", vec![("modules_consistent", b(false))]);
        assert_eq!(
            messages(&nodecheck_core::kind::Kind::validate(&Kernel, &bad)),
            [
                "bad-value: `modules_consistent = false` asserts nothing; write `modules_consistent = true`"
            ]
        );
    }
}
