//! Load a profile, open a root filesystem, run, write JUnit: nodecheck as a
//! library.
//!
//!     cargo run -p nodecheck-core --example junit -- PROFILE ROOTFS OUT.xml

use nodecheck_core::{profile, report::JunitReporter, run, target::RootFs};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Checks that run programs in the image start them through a copy of
    // this binary: it must not get past this line.
    if let Some(code) = nodecheck_core::helper::dispatch(nodecheck_checks::HELPERS) {
        std::process::exit(code);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [profile_path, rootfs, out] = args.as_slice() else {
        return Err("usage: junit PROFILE ROOTFS OUT.xml".into());
    };
    let profile = profile::load(profile_path, nodecheck_checks::KINDS, &Default::default())?;
    let target = RootFs::open(rootfs)?;
    let junit = Box::new(JunitReporter::new(out));
    let outcome = run::run(&profile, &target, &run::Options::default(), vec![junit]);
    let s = &outcome.report.summary.checks;
    println!(
        "{} checks: {} passed, {} failed",
        s.total, s.passed, s.failed
    );
    Ok(())
}
