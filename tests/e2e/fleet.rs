//! A fleet under Slurm: a real four-node cluster on this machine
//! (tests/fleet/cluster.sh: slurmctld and munged in a hub namespace, four
//! slurmd each in its own network, UTS and mount namespace), `srun` running
//! nodecheck on every node, `nodecheck report merge` over what they wrote,
//! and `nodecheck nhc` as HealthCheckProgram on all four nodes.
//!
//! Everything is started by the test and stopped by a Drop guard, also
//! when an assertion fails.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::util::*;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_nodecheck")
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The cluster of tests/fleet/cluster.sh in a temporary directory.
struct Cluster {
    dir: tempfile::TempDir,
}

impl Cluster {
    fn script() -> PathBuf {
        repo().join("tests/fleet/cluster.sh")
    }

    fn new() -> Cluster {
        Cluster {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn up(&self, healthcheck: &Path) {
        let o = Command::new("bash")
            .arg(Self::script())
            .arg("up")
            .arg(self.dir.path())
            .arg(healthcheck)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "cluster.sh up: {}{}",
            stdout(&o),
            stderr(&o)
        );
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn pid(&self, holder: &str) -> String {
        fs::read_to_string(self.path(&format!("{holder}.pid")))
            .unwrap()
            .trim()
            .to_string()
    }

    /// A Slurm client command in the hub's namespaces (where slurmctld
    /// listens).
    fn client(&self, program: &str, args: &[&str]) -> Output {
        Command::new("nsenter")
            .args(["-t", &self.pid("hub"), "-n", "-u", "--"])
            .arg(which(program).unwrap())
            .args(args)
            .env("SLURM_CONF", self.path("slurm.conf"))
            .output()
            .unwrap()
    }

    /// `nodecheck run PROFILE ARGS` in the hub's namespaces, as on a login
    /// node.
    fn nodecheck_on_hub(&self, profile: &Path, args: &[&str]) -> Output {
        Command::new("nsenter")
            .args([
                "-t",
                &self.pid("hub"),
                "-n",
                "-u",
                "--",
                bin(),
                "run",
                "--no-color",
            ])
            .arg(profile)
            .args(args)
            .output()
            .unwrap()
    }

    /// `bash -c script` in the hub's namespaces, in `dir`, as a user at a
    /// login node's shell.
    fn shell(&self, dir: &Path, script: &str) -> Output {
        Command::new("nsenter")
            .args([
                "-t",
                &self.pid("hub"),
                "-n",
                "-u",
                "--",
                "bash",
                "-c",
                script,
            ])
            .current_dir(dir)
            .env("SLURM_CONF", self.path("slurm.conf"))
            .output()
            .unwrap()
    }

    /// Waits for job `id` to end (polled with scontrol: sacct needs a
    /// database this cluster has not); its final JobState.
    fn wait_job(&self, id: &str) -> String {
        let start = Instant::now();
        loop {
            let o = self.client("scontrol", &["-o", "show", "job", id]);
            let states: Vec<String> = stdout(&o)
                .split_whitespace()
                .filter_map(|f| f.strip_prefix("JobState="))
                .map(str::to_owned)
                .collect();
            let ended = |s: &String| {
                [
                    "COMPLETED",
                    "FAILED",
                    "CANCELLED",
                    "TIMEOUT",
                    "NODE_FAIL",
                    "OUT_OF_MEMORY",
                    "BOOT_FAIL",
                    "DEADLINE",
                    "PREEMPTED",
                ]
                .contains(&s.as_str())
            };
            if !states.is_empty() && states.iter().all(ended) {
                return states.join(",");
            }
            if start.elapsed() > Duration::from_secs(60) {
                panic!(
                    "timed out waiting for job {id}: {}{}\n{}",
                    stdout(&o),
                    stderr(&o),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Runs `sh -c script` in node's mount namespace.
    fn on_node(&self, node: &str, script: &str) {
        let o = Command::new("nsenter")
            .args(["-t", &self.pid(node), "-m", "--", "sh", "-c", script])
            .output()
            .unwrap();
        assert!(o.status.success(), "{node}: {script}: {}", stderr(&o));
    }

    /// node -> (State, Reason).
    fn states(&self) -> Vec<(String, String, String)> {
        let o = self.client("scontrol", &["-o", "show", "node"]);
        stdout(&o)
            .lines()
            .map(|line| {
                let field = |k: &str| {
                    line.split_whitespace()
                        .find_map(|f| f.strip_prefix(k))
                        .unwrap_or("")
                        .to_string()
                };
                let reason = line
                    .find(" Reason=")
                    .map(|i| line[i + 8..].trim().to_string())
                    .unwrap_or_default();
                (field("NodeName="), field("State="), reason)
            })
            .collect()
    }

    fn log(&self) -> String {
        let mut s = String::new();
        for f in [
            "slurmctld.log",
            "node1.slurmd.log",
            "hc-node2.log",
            "hc-node1.log",
        ] {
            let text = fs::read_to_string(self.path(f)).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            s += &format!("--- {f} (last lines)\n");
            for l in tail.into_iter().rev() {
                s += l;
                s.push('\n');
            }
        }
        s
    }

    fn wait(&self, what: &str, ok: impl Fn(&[(String, String, String)]) -> bool) {
        let start = Instant::now();
        loop {
            let states = self.states();
            if ok(&states) {
                return;
            }
            if start.elapsed() > Duration::from_secs(40) {
                panic!("timed out waiting for {what}: {states:?}\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(Self::script())
            .arg("down")
            .arg(self.dir.path())
            .status();
    }
}

/// The fenced `sh` block of docs/fleet.md that contains `marker`, with
/// each `(from, to)` put in for this cluster. Every `from` must be there:
/// a recipe changed in the doc is seen here rather than tested stale.
fn doc_recipe(marker: &str, subs: &[(&str, &str)]) -> String {
    let doc = fs::read_to_string(repo().join("docs/fleet.md")).unwrap();
    let blocks: Vec<&str> = doc
        .split("```sh\n")
        .skip(1)
        .filter_map(|b| b.split_once("\n```").map(|(code, _)| code))
        .filter(|code| code.contains(marker))
        .collect();
    assert_eq!(
        blocks.len(),
        1,
        "docs/fleet.md: one sh block with {marker:?}"
    );
    let mut text = blocks[0].to_string() + "\n";
    for (from, to) in subs {
        assert!(
            text.contains(from),
            "docs/fleet.md's {marker} recipe no longer has {from:?}:\n{text}"
        );
        text = text.replace(from, to);
    }
    text
}

/// The job id of sbatch's "Submitted batch job N" (the last one).
fn submitted(o: &Output) -> String {
    stdout(o)
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("Submitted batch job "))
        .unwrap_or_else(|| panic!("sbatch: {}{}", stdout(o), stderr(o)))
        .trim()
        .to_string()
}

fn up(state: &str) -> bool {
    state.starts_with("IDLE") && !state.contains("DRAIN") && !state.contains("DOWN")
}

const PROFILE: &str = r#"
[profile]
name = "fleet-test"

[[control]]
id = "healthy"
title = "The node's own health marker is there"
severity = "critical"

  [[control.file]]
  path = "/run/fleet/healthy"
  exists = true

[[control]]
id = "munge"
severity = "critical"

  [[control.process]]
  name = "munged"
  running = true
"#;

const IMAGE_PROFILE: &str = r#"
[profile]
name = "fleet-image"

[[control]]
id = "release"
title = "The node runs this month's image"
severity = "high"

  [[control.file]]
  path = "/run/fleet/release"
  content = { matches = "^2026\\.07$" }

[[control]]
id = "first-two"
title = "NHC's `node[1-2] || check`: only node1 and node2 have this check"
only_if = { hostname = "node[1-2]" }

  [[control.file]]
  path = "/run/fleet/healthy"
  exists = true
"#;

#[test]
fn a_four_node_slurm_cluster_runs_merges_drains_and_resumes() {
    let tools = [
        "slurmctld",
        "slurmd",
        "munged",
        "srun",
        "scontrol",
        "nsenter",
        "unshare",
        "ip",
    ];
    if !is_root() {
        eprintln!("note: fleet slurm test skipped: needs root");
        return;
    }
    let missing: Vec<&str> = tools.into_iter().filter(|t| which(t).is_none()).collect();
    if !missing.is_empty() {
        eprintln!(
            "note: fleet slurm test skipped: {} not installed (tests/deps.sh installs them)",
            missing.join(", ")
        );
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    fs::write(w.join("nhc.toml"), PROFILE).unwrap();
    fs::write(w.join("image.toml"), IMAGE_PROFILE).unwrap();
    // slurmd runs HealthCheckProgram with an empty environment and no
    // arguments: a wrapper names the profile, the config and a log. Each
    // node keeps its --drain-after count in its own /run; all four log to
    // the test's syslog socket.
    let cluster = Cluster::new();
    let d = cluster.dir.path().display().to_string();
    let syslog = w.join("syslog");
    let syslog_server = std::os::unix::net::UnixDatagram::bind(&syslog).unwrap();
    syslog_server.set_nonblocking(true).unwrap();
    let hc = w.join("healthcheck.sh");
    fs::write(
        &hc,
        format!(
            "#!/bin/sh\nexport SLURM_CONF={d}/slurm.conf PATH=/usr/bin:/bin:/usr/sbin:/sbin\n\
             exec {bin} nhc --profile {profile} --budget 10s --drain-after 2 --syslog {syslog} \
             --json {health}/$(hostname -s).json >>{d}/hc-$(hostname).log 2>&1\n",
            bin = bin(),
            profile = w.join("nhc.toml").display(),
            syslog = syslog.display(),
            health = w.join("health").display(),
        ),
    )
    .unwrap();
    fs::set_permissions(&hc, fs::Permissions::from_mode(0o755)).unwrap();
    fs::create_dir(w.join("health")).unwrap();
    cluster.up(&hc);

    cluster.wait("four idle nodes", |s| {
        s.len() == 4 && s.iter().all(|(_, st, _)| up(st))
    });
    for n in ["node1", "node2", "node4"] {
        cluster.on_node(n, "echo 2026.07 > /run/fleet/release");
    }
    cluster.on_node("node3", "echo 2026.06 > /run/fleet/release");

    // srun on all four nodes; one JSON report per node (`%N`: srun
    // interleaves long lines of several tasks on one stream).
    let reports = w.join("reports");
    fs::create_dir(&reports).unwrap();
    let out = reports.join("%N.json");
    let o = cluster.client(
        "srun",
        &[
            "-N4",
            &format!("--output={}", out.display()),
            // The terminal report goes to stderr with `--json -`; srun
            // would mix it into --output.
            &format!("--error={}", w.join("%N.err").display()),
            bin(),
            "run",
            w.join("image.toml").to_str().unwrap(),
            "--json",
            "-",
        ],
    );
    // nodecheck exits 1 on node3, so srun does too.
    assert_eq!(
        code(&o),
        1,
        "srun: {}{}\n{}",
        stdout(&o),
        stderr(&o),
        cluster.log()
    );
    let names: Vec<String> = fs::read_dir(&reports)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");

    let junit = w.join("fleet.xml");
    let json = w.join("fleet.json");
    let prom = w.join("fleet.prom");
    let o = nodecheck(&[
        "report",
        "merge",
        "--expect",
        "node[1-5]",
        "--prometheus",
        prom.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        reports.to_str().unwrap(),
    ]);
    let text = stdout(&o);
    assert_eq!(code(&o), 1, "{text}{}", stderr(&o));
    assert!(text.contains("fleet: 4 nodes node[1-4]"), "{text}");
    assert!(text.contains("  fail on 1 node3:\n"), "{text}");
    assert!(text.contains("file /run/fleet/release: content"), "{text}");
    assert!(
        text.contains("no report from 1 expected nodes: node5"),
        "{text}"
    );
    let v: serde_json::Value = serde_json::from_str(&fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["controls"][0]["pass"]["nodes"], "node[1-2,4]");
    assert_eq!(v["controls"][0]["fail"]["nodes"], "node3");
    // Selected by each node's own hostname.
    assert_eq!(v["controls"][1]["id"], "first-two");
    assert_eq!(v["controls"][1]["pass"]["nodes"], "node[1-2]");
    assert_eq!(v["controls"][1]["skip"]["nodes"], "node[3-4]");
    xmllint(&junit).unwrap();
    let has_client = Command::new("/usr/bin/python3")
        .args(["-c", "import prometheus_client"])
        .status()
        .is_ok_and(|s| s.success());
    if has_client {
        let m = crate::live::parse_prometheus(&prom);
        let failed = |n: &str| m[&format!("nodecheck_fleet_node_failed{{node=\"{n}\"}}")];
        assert_eq!(
            [failed("node1"), failed("node3"), failed("node5")],
            [0.0, 1.0, 1.0]
        );
        assert_eq!(
            m["nodecheck_fleet_control_nodes{control=\"first-two\",severity=\"medium\",status=\"skip\"}"],
            2.0
        );
    } else {
        eprintln!("note: fleet.prom not parsed: python3-prometheus-client is not installed");
    }

    // The sbatch recipes of docs/fleet.md, as written there.
    let acc = w.join("acceptance");
    fs::create_dir(&acc).unwrap();
    let acc_s = acc.to_str().unwrap();
    let image = w.join("image.toml");
    let image = image.to_str().unwrap();
    let run = format!("{} run", bin());
    let merge = format!("{} report merge", bin());
    let fleet_of = |out: &Path| {
        let text = fs::read_to_string(out).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
        assert!(text.contains("fleet: 4 nodes node[1-4]"), "{text}");
        assert!(text.contains("  fail on 1 node3:\n"), "{text}");
        assert!(text.contains("file /run/fleet/release: content"), "{text}");
        assert!(!text.contains("no report from"), "{text}");
    };

    // `--nodes=N`: one job on all four nodes, merged in the job.
    cluster.wait("four idle nodes", |s| s.iter().all(|(_, st, _)| up(st)));
    let script = doc_recipe(
        "# acceptance.sbatch",
        &[
            ("--nodes=64", "--nodes=4"),
            ("/shared/acceptance", acc_s),
            ("/etc/nodecheck/compute.toml", image),
            ("nodecheck run", &run),
            ("nodecheck report merge", &merge),
        ],
    );
    fs::write(w.join("acceptance.sbatch"), script).unwrap();
    let o = cluster.shell(w, "sbatch acceptance.sbatch");
    let nodes_job = submitted(&o);
    // The merge exits 1 for node3, so the job fails.
    assert_eq!(cluster.wait_job(&nodes_job), "FAILED");
    fleet_of(&acc.join(format!("{nodes_job}.out")));
    xmllint(&acc.join(&nodes_job).join("fleet.xml")).unwrap();

    // A job array, one whole node per task, and a dependent merge job.
    cluster.wait("four idle nodes", |s| s.iter().all(|(_, st, _)| up(st)));
    let script = doc_recipe(
        "# acceptance-array.sbatch",
        &[
            ("--array=0-63", "--array=0-3"),
            ("/shared/acceptance", acc_s),
            ("/etc/nodecheck/compute.toml", image),
            ("nodecheck run", &run),
        ],
    );
    fs::write(w.join("acceptance-array.sbatch"), script).unwrap();
    let submit = doc_recipe(
        "sbatch --parsable acceptance-array.sbatch",
        &[
            ("-p compute", "-p batch"),
            ("/shared/acceptance", acc_s),
            ("nodecheck report merge", &merge),
        ],
    );
    let o = cluster.shell(w, &submit);
    let job = submitted(&o);
    assert_eq!(cluster.wait_job(&job), "FAILED");
    fleet_of(&acc.join(format!("merge-{job}.out")));
    // The array's reports: one per node, named by the node.
    let array: Vec<PathBuf> = fs::read_dir(&acc)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() && !p.ends_with(&nodes_job))
        .collect();
    assert_eq!(array.len(), 1, "{array:?}");
    let mut names: Vec<String> = fs::read_dir(&array[0])
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "fleet.xml",
            "node1.json",
            "node2.json",
            "node3.json",
            "node4.json"
        ]
    );
    xmllint(&array[0].join("fleet.xml")).unwrap();

    // The slurm kind from a login node: the scheduler's view, and a
    // MUNGE round trip through the cluster's munged.
    let d = cluster.dir.path().display().to_string();
    let acceptance = w.join("cluster.toml");
    fs::write(
        &acceptance,
        format!(
            "[profile]\nname = \"acceptance\"\n\n\
             [[control]]\nid = \"cluster\"\n\n  [[control.slurm]]\n  nodes = \"node[1-4]\"\n  \
             env = {{ SLURM_CONF = \"{d}/slurm.conf\" }}\n  cpus = 1\n  real_memory = 100\n  \
             gres = \"\"\n  partitions = [\"batch\"]\n\n\
             [[control]]\nid = \"munge-roundtrip\"\n\n  [[control.command]]\n  \
             run = \"munge -S {d}/munge/munge.socket -n | unmunge -S {d}/munge/munge.socket\"\n"
        ),
    )
    .unwrap();
    let report = w.join("acceptance.json");
    let o = cluster.nodecheck_on_hub(&acceptance, &["--json", report.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    // Slurm 22.05 has `sinfo --json`: the nodes were read from it.
    let v: serde_json::Value = serde_json::from_str(&fs::read_to_string(&report).unwrap()).unwrap();
    let slurm = &v["controls"][0]["checks"][0];
    assert_eq!(slurm["kind"], "slurm", "{slurm}");
    let registered = slurm["properties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["key"] == "registered")
        .unwrap_or_else(|| panic!("{slurm}"));
    assert_eq!(
        registered["message"], "registered: 4 nodes (sinfo --json)",
        "{slurm}"
    );

    // HealthCheckProgram on all four: node2 loses its health marker and is
    // drained with nodecheck's reason; the others stay up.
    cluster.on_node("node2", "rm /run/fleet/healthy");
    cluster.wait("node2 drained by nodecheck", |s| {
        s.iter().any(|(n, st, r)| {
            n == "node2" && st.contains("DRAIN") && r.starts_with("nodecheck: healthy: ")
        })
    });
    // The slurm kind names the drained node and nodecheck's reason.
    let o = cluster.nodecheck_on_hub(&acceptance, &[]);
    let text = stdout(&o);
    assert_eq!(code(&o), 1, "{text}{}", stderr(&o));
    assert!(
        text.contains("node2 IDLE+DRAIN (nodecheck: healthy: "),
        "{text}"
    );
    let states = cluster.states();
    for (n, st, _) in &states {
        if n != "node2" {
            assert!(up(st), "{n} should stay up: {states:?}\n{}", cluster.log());
        }
    }
    // --drain-after 2: the first failing run only counted, in node2's own
    // /run, then the drain.
    let hc2 = fs::read_to_string(cluster.path("hc-node2.log")).unwrap();
    let first = hc2
        .find("nodecheck:  slurm:  failing run 1 of 2: not draining yet")
        .unwrap_or_else(|| panic!("{hc2}"));
    let drained = hc2
        .find("nodecheck:  slurm:  drained node node2: nodecheck: healthy: ")
        .unwrap_or_else(|| panic!("{hc2}"));
    assert!(first < drained, "{hc2}");
    // Fixed: nodecheck resumes the node it drained.
    cluster.on_node("node2", "touch /run/fleet/healthy");
    cluster.wait("node2 resumed", |s| s.iter().all(|(_, st, _)| up(st)));
    // The failures, the drain and the resume reached syslog.
    let mut logged = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = syslog_server.recv(&mut buf) {
        logged.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    for (pri, text) in [
        (
            "<27>",
            "Health check failed: healthy: file /run/fleet/healthy",
        ),
        ("<29>", "slurm: drained node node2: nodecheck: healthy: "),
        ("<29>", "slurm: resumed node node2"),
    ] {
        assert!(
            logged
                .iter()
                .any(|m| m.starts_with(pri) && m.contains(text)),
            "{pri} {text}: {logged:#?}"
        );
    }

    // An admin's drain is left alone: not resumed while the node is
    // healthy, its reason not overwritten once the node fails too.
    let admin = "admin: replacing DIMM B2";
    let o = cluster.client(
        "scontrol",
        &[
            "update",
            "nodename=node4",
            "state=drain",
            &format!("reason={admin}"),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let hc4 = cluster.path("hc-node4.log");
    let said = |what: &str| {
        let start = Instant::now();
        while !fs::read_to_string(&hc4).unwrap_or_default().contains(what) {
            assert!(
                start.elapsed() < Duration::from_secs(40),
                "node4's health check never said {what:?}\n{}",
                cluster.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    said(&format!(
        "node node4 drained by someone else ({admin}); not resuming"
    ));
    cluster.on_node("node4", "rm /run/fleet/healthy");
    said(&format!(
        "node node4 already drained by someone else ({admin}); leaving their reason"
    ));
    let states = cluster.states();
    let node4 = states.iter().find(|(n, _, _)| n == "node4").unwrap();
    assert!(
        node4.1.contains("DRAIN") && node4.2.starts_with(admin),
        "{states:?}"
    );

    // The fleet view of the health checks, merged as docs/fleet.md does.
    let health = w.join("health");
    let merge_health = doc_recipe(
        "nodecheck report merge --expect \"$(sinfo",
        &[
            ("/shared/health", health.to_str().unwrap()),
            ("nodecheck report merge", &merge),
        ],
    );
    let o = cluster.shell(w, &merge_health);
    let text = stdout(&o);
    assert_eq!(code(&o), 1, "{text}{}", stderr(&o));
    assert!(text.contains("fleet: 4 nodes node[1-4]"), "{text}");
    assert!(text.contains("  fail on 1 node4:\n"), "{text}");
    assert!(!text.contains("no report from"), "{text}");
}

/// `nodecheck nhc` with Slurm out of the picture (no configuration, so
/// scontrol fails at once) and its own syslog socket and state directory.
fn nhc(profile: &Path, extra: &[&str]) -> Output {
    Command::new(bin())
        .arg("nhc")
        .arg("--profile")
        .arg(profile)
        .args(extra)
        .env_remove("SLURM_CONF")
        .env_remove("SLURMD_NODENAME")
        .output()
        .unwrap()
}

#[test]
fn nhc_logs_to_syslog_writes_reports_and_drains_after_n_failures() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bad = d.join("bad.toml");
    fs::write(
        &bad,
        "[profile]\nname = \"t\"\n[[control]]\nid = \"marker\"\nseverity = \"high\"\n  \
         [[control.file]]\n  path = \"/nonexistent/nodecheck-fleet-marker\"\n  exists = true\n",
    )
    .unwrap();
    let good = d.join("good.toml");
    fs::write(
        &good,
        "[profile]\nname = \"t\"\n[[control]]\nid = \"root\"\n  [[control.file]]\n  path = \"/\"\n  exists = true\n",
    )
    .unwrap();
    let sock = d.join("log");
    let server = std::os::unix::net::UnixDatagram::bind(&sock).unwrap();
    server.set_nonblocking(true).unwrap();
    let state = d.join("state");
    let (json, junit) = (d.join("r.json"), d.join("r.xml"));
    let args = [
        "--dry-run",
        "--drain-after",
        "2",
        "--state-dir",
        state.to_str().unwrap(),
        "--syslog",
        sock.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ];
    let received = || {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = server.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        got
    };

    // First failing run: logged, counted, not drained.
    let o = nhc(&bad, &args);
    let text = stdout(&o);
    assert_eq!(code(&o), 1, "{text}{}", stderr(&o));
    assert!(
        text.contains("failing run 1 of 2: not draining yet"),
        "{text}"
    );
    assert!(!text.contains("state=drain"), "{text}");
    let logged = received();
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert!(
        logged[0].starts_with("<27>") && logged[0].contains("Health check failed: marker:"),
        "{logged:?}"
    );
    let v: serde_json::Value = serde_json::from_str(&fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["controls"][0]["status"], "fail");
    xmllint(&junit).unwrap();

    // Second in a row: the drain is due.
    let o = nhc(&bad, &args);
    let text = stdout(&o);
    assert!(text.contains("state=drain"), "{text}");
    assert!(text.contains("reason=\"nodecheck: marker:"), "{text}");

    // A pass resets the count: the next failure is the first again.
    let o = nhc(&good, &args);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert!(!state.join("nhc-failures").exists());
    let o = nhc(&bad, &args);
    assert!(stdout(&o).contains("failing run 1 of 2"), "{}", stdout(&o));
}

/// Syslog as an admin expects it: the default socket missing is no noise
/// on a passing run; a failure that could not be logged is said once on
/// stderr; a `--syslog SOCKET` that cannot be reached is said on every
/// run. The health verdict never depends on it.
#[test]
fn nhc_says_once_what_syslog_did_not_get() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = d.join("good.toml");
    fs::write(
        &good,
        "[profile]\nname = \"t\"\n[[control]]\nid = \"root\"\n  [[control.file]]\n  path = \"/\"\n  exists = true\n",
    )
    .unwrap();
    let bad = d.join("bad.toml");
    fs::write(
        &bad,
        "[profile]\nname = \"t\"\n[[control]]\nid = \"marker\"\n  [[control.file]]\n  \
         path = \"/nonexistent/nodecheck-fleet-marker\"\n  exists = true\n  \
         [[control.file]]\n  path = \"/nonexistent/nodecheck-fleet-marker2\"\n  exists = true\n\
         [[control]]\nid = \"marker2\"\n  [[control.file]]\n  path = \"/nonexistent/x\"\n  exists = true\n",
    )
    .unwrap();
    let nowhere = d.join("no-such-socket");
    let nowhere = nowhere.to_str().unwrap();
    let lines = |o: &Output| -> Vec<String> {
        stderr(o)
            .lines()
            .filter(|l| l.contains("syslog"))
            .map(str::to_owned)
            .collect()
    };

    // The default socket, passing: nothing about syslog, whether or not
    // this machine has /dev/log.
    let o = nhc(&good, &["--dry-run"]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert_eq!(lines(&o), Vec::<String>::new());
    assert!(!stdout(&o).contains("syslog"), "{}", stdout(&o));

    // The default socket, failing: said once when it is missing (where
    // /dev/log exists the messages went there: not run, so that the test
    // writes nothing to this machine's log).
    if !Path::new("/dev/log").exists() {
        let o = nhc(&bad, &["--dry-run"]);
        assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
        let l = lines(&o);
        assert_eq!(l.len(), 1, "{l:?}");
        assert!(
            l[0].starts_with("nodecheck: warning: cannot log to syslog (/dev/log: ")
                && l[0].contains("; 3 messages not logged"),
            "{l:?}"
        );
    }

    // An explicit socket out of reach: said on a passing run too, and the
    // node stays healthy.
    let o = nhc(&good, &["--dry-run", "--syslog", nowhere]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let l = lines(&o);
    assert_eq!(l.len(), 1, "{l:?}");
    assert!(
        l[0].starts_with(&format!(
            "nodecheck: warning: --syslog {nowhere}: cannot log there: "
        )),
        "{l:?}"
    );
    let o = nhc(&bad, &["--dry-run", "--syslog", nowhere]);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    let l = lines(&o);
    assert_eq!(l.len(), 1, "{l:?}");
    assert!(l[0].ends_with("; 3 messages not logged"), "{l:?}");

    // `none`: silence, also on a failure.
    let o = nhc(&bad, &["--dry-run", "--syslog", "none"]);
    assert_eq!(code(&o), 1);
    assert_eq!(lines(&o), Vec::<String>::new());
}

/// Real reports of three image directories, plus every kind of bad input:
/// each bad file is named, the rest merged; exit 2 only when nothing could
/// be read.
#[test]
fn report_merge_names_bad_inputs_and_merges_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let profile = d.join("p.toml");
    fs::write(
        &profile,
        "[profile]\nname = \"img\"\n[[control]]\nid = \"release\"\nseverity = \"high\"\n  \
         [[control.file]]\n  path = \"/etc/image-release\"\n  content = { matches = \"^2026\\\\.07\" }\n",
    )
    .unwrap();
    let reports = d.join("reports");
    fs::create_dir(&reports).unwrap();
    for (name, release) in [("n1", "2026.07"), ("n2", "2026.07"), ("n3", "2026.06")] {
        let root = d.join("images").join(name);
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::write(root.join("etc/image-release"), format!("{release}\n")).unwrap();
        fs::write(
            root.join("etc/os-release"),
            "PRETTY_NAME=\"Test Linux 1\"\nVERSION_ID=\"1\"\n",
        )
        .unwrap();
        let json = reports.join(format!("{name}.json"));
        let o = nodecheck(&[
            "run",
            profile.to_str().unwrap(),
            "-t",
            root.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ]);
        assert!(code(&o) <= 1, "{}{}", stdout(&o), stderr(&o));
    }
    let good = fs::read_to_string(reports.join("n1.json")).unwrap();
    let bad = d.join("bad");
    fs::create_dir(&bad).unwrap();
    fs::write(bad.join("cut.json"), &good[..good.len() / 2]).unwrap();
    fs::write(
        bad.join("text.json"),
        "srun: error: node3: task 2: Exited\n",
    )
    .unwrap();
    fs::write(bad.join("empty.json"), "").unwrap();
    fs::write(
        bad.join("future.json"),
        good.replace("nodecheck/report/v1", "nodecheck/report/v9"),
    )
    .unwrap();
    fs::write(bad.join("again.json"), &good).unwrap();
    let none = d.join("none");
    fs::create_dir(&none).unwrap();

    let o = nodecheck(&[
        "report",
        "merge",
        reports.to_str().unwrap(),
        bad.to_str().unwrap(),
        none.to_str().unwrap(),
    ]);
    let (out, err) = (stdout(&o), stderr(&o));
    assert_eq!(code(&o), 1, "{out}{err}");
    assert!(out.contains("fleet: 3 nodes n[1-3]"), "{out}");
    assert!(out.contains("  fail on 1 n3:\n"), "{out}");
    assert!(
        out.contains("release 2026.06"),
        "images are told apart: {out}"
    );
    for (file, why) in [
        ("cut.json", "truncated JSON report"),
        ("text.json", "not a JSON report"),
        ("empty.json", "empty"),
        ("future.json", "nodecheck/report/v9"),
        ("again.json", "a second report for node \"n1\""),
        ("none", "no *.json file in it"),
    ] {
        assert!(
            err.lines().any(|l| l.contains(file) && l.contains(why)),
            "{file}: {why}\n{err}"
        );
    }

    // Only bad input: nothing to merge.
    let o = nodecheck(&["report", "merge", bad.join("cut.json").to_str().unwrap()]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no report could be read"),
        "{}",
        stderr(&o)
    );
    // A hostlist typo is a usage error naming it.
    let o = nodecheck(&[
        "report",
        "merge",
        "--expect",
        "n[1-",
        reports.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("--expect \"n[1-\" is not a hostlist"),
        "{}",
        stderr(&o)
    );
    // Passing nodes only, at --fail-on critical: exit 0.
    let o = nodecheck(&[
        "report",
        "merge",
        "--fail-on",
        "critical",
        reports.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));

    // Concatenated on stdin, as srun gathers them.
    let mut all = String::new();
    for n in ["n1", "n2", "n3"] {
        all += &fs::read_to_string(reports.join(format!("{n}.json"))).unwrap();
    }
    let mut child = Command::new(bin())
        .args(["report", "merge", "--json", "-", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(all.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["nodes"]["nodes"], "n[1-3]");
    assert_eq!(v["controls"][0]["fail"]["nodes"], "n3");
}
