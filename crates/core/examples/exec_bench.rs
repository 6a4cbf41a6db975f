//! Per-command cost of the rootfs sandbox against plain `chroot`, measured
//! from one process (benches/exec.sh prints it):
//!
//! ```text
//! cargo run --release -p nodecheck-core --example exec_bench -- ROOTFS [RUNS]
//! ```
//!
//! Each run starts `/bin/sh -c true` in the image: through
//! `Target::exec` (helper, namespaces, overlay, /proc, /dev, /sys, tmpfs,
//! pivot_root, teardown), and through `chroot ROOTFS /bin/sh -c true`,
//! one after the other so that both see the same load.

use std::process::Command;
use std::time::{Duration, Instant};

use nodecheck_core::target::{ExecRequest, RootFs, Target};

fn main() {
    if let Some(code) = nodecheck_core::helper::dispatch(&[]) {
        std::process::exit(code);
    }
    let mut args = std::env::args().skip(1);
    let Some(root) = args.next() else {
        eprintln!("usage: exec_bench ROOTFS [RUNS]");
        std::process::exit(2);
    };
    let runs: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(200);
    let target = RootFs::open(&root).unwrap_or_else(|e| {
        eprintln!("exec_bench: {e}");
        std::process::exit(2)
    });
    let req = ExecRequest::new(["/bin/sh", "-c", "true"]);
    let sandboxed = || {
        let out = target.exec(&req).expect("exec");
        assert!(out.exit.success(), "{out:?}");
    };
    let chrooted = || {
        let st = Command::new("chroot")
            .arg(&root)
            .args(["/bin/sh", "-c", "true"])
            .status()
            .expect("chroot");
        assert!(st.success());
    };
    // Alternated, so that both see the same load on a shared machine.
    let (sandbox, chroot, diffs) = measure(runs, sandboxed, chrooted);
    let isolation = target.exec(&req).map(|o| o.isolation).unwrap_or_default();
    println!("per command ({runs} runs each, alternated, /bin/sh -c true in the image):");
    println!("{:<34} {:>9} {:>9} {:>9}", "", "median", "p90", "min");
    for (name, d) in [
        ("chroot", &chroot),
        (&format!("nodecheck sandbox ({isolation})")[..], &sandbox),
    ] {
        println!(
            "{:<34} {:>7.2}ms {:>7.2}ms {:>7.2}ms",
            name,
            ms(pct(d, 50)),
            ms(pct(d, 90)),
            ms(pct(d, 0))
        );
    }
    println!(
        "{:<34} {:>7.2}ms {:>9} {:>7.2}ms",
        "sandbox overhead (median, min)",
        ms(pct(&sandbox, 50)) - ms(pct(&chroot, 50)),
        "",
        ms(pct(&sandbox, 0)) - ms(pct(&chroot, 0))
    );
    println!(
        "{:<34} {:>7.2}ms",
        "median of paired differences",
        diffs[diffs.len() / 2]
    );
}

/// Times `a` and `b` alternately `runs` times each (after a warm-up);
/// returns both sorted, and the sorted differences a - b of each pair in
/// milliseconds.
fn measure(
    runs: usize,
    mut a: impl FnMut(),
    mut b: impl FnMut(),
) -> (Vec<Duration>, Vec<Duration>, Vec<f64>) {
    for _ in 0..runs.min(10) {
        a();
        b();
    }
    let time = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        t.elapsed()
    };
    let (mut va, mut vb, mut diffs) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let (x, y) = (time(&mut a), time(&mut b));
        diffs.push(ms(x) - ms(y));
        va.push(x);
        vb.push(y);
    }
    va.sort();
    vb.sort();
    diffs.sort_by(f64::total_cmp);
    (va, vb, diffs)
}

fn pct(v: &[Duration], p: usize) -> Duration {
    v[(v.len() - 1) * p / 100]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
