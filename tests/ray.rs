//! Scale out on Ray: the `distributed` example run by `python -m
//! flowyml_ray` on a two-node Ray cluster that the test starts on loopback,
//! against local runs of the same program; and `cache serve`, the cache a
//! driver speaks to, refusing what a worker did not compute.
//!
//! The cluster tests find Python in `FLOWYML_PYTHON` (default `python3`)
//! and the driver in this repository's `python/flowyml_ray`. Where that
//! Python has no Ray they print why and pass, unless
//! `FLOWYML_REQUIRE_RAY=1`, where they fail instead.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The `distributed` example, which `cargo test` builds beside this binary.
fn example() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary");
    let binary = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps")
        .join("examples")
        .join(format!("distributed{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.exists(),
        "{} is missing: `cargo test` builds the examples (run it from the workspace)",
        binary.display()
    );
    binary
}

fn python() -> String {
    std::env::var("FLOWYML_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// Where the driver's package is, put first on `PYTHONPATH` so that the
/// tree's code is tested, not an installed copy.
fn package_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("python/flowyml_ray")
}

/// A Python that imports Ray and the driver, or `None` after printing why
/// not (a failure where `FLOWYML_REQUIRE_RAY=1`).
fn ray_python(test: &str) -> Option<String> {
    let python = python();
    let probe = Command::new(&python)
        .args(["-c", "import ray, flowyml_ray; print(ray.__version__)"])
        .env("PYTHONPATH", package_dir())
        .output();
    let why = match probe {
        Ok(out) if out.status.success() => return Some(python),
        Ok(out) => format!(
            "`{python}` cannot import ray: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ),
        Err(e) => format!("`{python}` does not run: {e}"),
    };
    let why = format!("{why} (set FLOWYML_PYTHON to a Python with `ray[default]`)");
    if std::env::var("FLOWYML_REQUIRE_RAY").is_ok_and(|v| v.trim() == "1") {
        panic!("{test}: FLOWYML_REQUIRE_RAY=1, but {why}");
    }
    let _ = writeln!(std::io::stderr(), "skipping {test}: {why}");
    None
}

/// Runs `cmd` to its end, killed past `limit`: no `ray start` may hang a
/// test run.
fn output_within(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("killed");
            panic!(
                "{cmd:?} ran past {limit:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("finished")
}

/// A free TCP port on the cluster's address.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.2:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.2")
        .port()
}

/// The nodes' address: Ray rewrites 127.0.0.1 to a routable address, any
/// other loopback address keeps the cluster on this machine.
const NODE_IP: &str = "127.0.0.2";

/// The custom resource the worker node advertises for a GPU slot.
const GPU_SLOT: &str = "gpu_slot";

/// A two-node Ray cluster on loopback: a head and a worker of one CPU each,
/// the worker with one [`GPU_SLOT`]. Dropping it stops exactly its own
/// processes (`ray stop` would stop every Ray of the machine).
struct Cluster {
    python: String,
    /// Ray's temporary directory: short, as Ray's socket paths must be.
    dir: PathBuf,
    address: String,
}

impl Cluster {
    fn start(python: &str) -> Cluster {
        let dir = PathBuf::from(format!("/tmp/fyr-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("Ray's temp dir");
        let port = free_port();
        let cluster = Cluster {
            python: python.to_owned(),
            address: format!("{NODE_IP}:{port}"),
            dir,
        };
        let common = |agent_port: u16| {
            vec![
                format!("--node-ip-address={NODE_IP}"),
                "--num-cpus=1".to_owned(),
                "--num-gpus=0".to_owned(),
                "--object-store-memory=400000000".to_owned(),
                format!("--dashboard-agent-listen-port={agent_port}"),
                format!("--temp-dir={}", cluster.dir.display()),
                "--disable-usage-stats".to_owned(),
            ]
        };
        let mut head = vec![
            "--head".to_owned(),
            format!("--port={port}"),
            "--include-dashboard=false".to_owned(),
            format!("--dashboard-port={}", free_port()),
            format!("--ray-client-server-port={}", free_port()),
        ];
        head.extend(common(free_port()));
        cluster.ray_start(&head);
        let mut worker = vec![
            format!("--address={}", cluster.address),
            format!("--resources={{\"{GPU_SLOT}\": 1}}"),
        ];
        worker.extend(common(free_port()));
        cluster.ray_start(&worker);
        cluster
    }

    fn ray_start(&self, args: &[String]) {
        let out = output_within(
            Command::new(&self.python)
                .args(["-m", "ray.scripts.scripts", "start"])
                .args(args)
                .env("RAY_USAGE_STATS_ENABLED", "0")
                // The nodes keep the binary they are sent in the cluster's
                // directory, removed with it: each build is 124 MB.
                .env("FLOWYML_RAY_BIN_DIR", self.dir.join("bin")),
            Duration::from_secs(120),
        );
        assert!(
            out.status.success(),
            "ray start {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The pids of this cluster's processes: those that name its temporary
    /// directory or its address (a port of its own), and their descendants
    /// (agents and workers rename themselves).
    fn pids(&self) -> Vec<u32> {
        let dir = self.dir.display().to_string();
        let address = format!("={}", self.address);
        let mut parents = BTreeMap::new();
        let mut own = BTreeSet::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            if cmdline.contains(&dir) || cmdline.contains(&address) {
                own.insert(pid);
            }
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            // `pid (comm) state ppid ...`; comm may hold spaces.
            if let Some(ppid) = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok())
            {
                parents.insert(pid, ppid);
            }
        }
        let mut grew = true;
        while grew {
            grew = false;
            for (pid, ppid) in &parents {
                if own.contains(ppid) && own.insert(*pid) {
                    grew = true;
                }
            }
        }
        own.remove(&std::process::id());
        own.into_iter().collect()
    }

    /// Runs the driver on this cluster; returns its exit code, stderr and
    /// report.
    fn run(&self, cache: &Path, extra: &[&str], env: &[(&str, String)]) -> (i32, String, Value) {
        let report = cache.with_extension("report.json");
        let _ = std::fs::remove_file(&report);
        let mut cmd = Command::new(&self.python);
        cmd.args(["-m", "flowyml_ray", "run", "--binary"])
            .arg(example())
            .args(["--pipeline", "distributed", "--address", &self.address])
            .args(["--input", "rows=2000", "--gpu-resource", GPU_SLOT])
            .arg("--cache-dir")
            .arg(cache)
            .arg("--report")
            .arg(&report)
            .args(extra)
            .env("PYTHONPATH", package_dir())
            .env("RAY_USAGE_STATS_ENABLED", "0");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = output_within(&mut cmd, Duration::from_secs(300));
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let text = std::fs::read_to_string(&report)
            .unwrap_or_else(|e| panic!("no report ({e}); stderr: {stderr}"));
        let report: Value = serde_json::from_str(&text).expect("the report is JSON");
        (out.status.code().unwrap_or(-1), stderr, report)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let signal = |pids: &[u32], sig: &str| {
            for pid in pids {
                let _ = Command::new("kill")
                    .args([sig, &pid.to_string()])
                    .stderr(Stdio::null())
                    .status();
            }
        };
        signal(&self.pids(), "-TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.pids().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        signal(&self.pids(), "-KILL");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.pids().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `run --json` of the example on `cache`, with its exit status.
fn local_run(cache: &Path) -> Value {
    let out = Command::new(example())
        .args(["run", "distributed", "--input", "rows=2000", "--json"])
        .arg("--cache-dir")
        .arg(cache)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "local run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// A field of each step, by step name.
fn by_step<'a>(run: &'a Value, field: &str) -> BTreeMap<&'a str, &'a Value> {
    run["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| (s["name"].as_str().expect("name"), &s[field]))
        .collect()
}

fn steps_with<'a>(run: &'a Value, status: &str) -> BTreeSet<&'a str> {
    by_step(run, "status")
        .into_iter()
        .filter(|(_, s)| *s == status)
        .map(|(n, _)| n)
        .collect()
}

/// The content fingerprints of the artifacts that have one (an opaque
/// artifact's is its producer's key, not a content hash).
fn fingerprints(run: &Value, opaque: &BTreeSet<String>) -> BTreeMap<String, Value> {
    run["artifacts"]
        .as_array()
        .expect("artifacts")
        .iter()
        .filter(|a| !opaque.contains(a["name"].as_str().unwrap_or_default()))
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_owned(),
                a["fingerprint"].clone(),
            )
        })
        .collect()
}

fn plan() -> Value {
    let out = Command::new(example())
        .args(["plan", "distributed", "--json"])
        .output()
        .expect("plan");
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[test]
fn a_ray_run_matches_a_local_run_and_shares_its_cache() {
    let Some(python) = ray_python("a_ray_run_matches_a_local_run_and_shares_its_cache") else {
        return;
    };
    let plan = plan();
    let opaque: BTreeSet<String> = plan["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["codec"] == "opaque")
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(opaque, BTreeSet::from(["index".to_owned()]));
    let groups = plan["groups"].as_array().unwrap().len();
    let dir = tempfile::tempdir().expect("temp dir");
    let local = local_run(&dir.path().join("local"));

    let cluster = Cluster::start(&python);
    let cache = dir.path().join("distributed");
    let (code, stderr, cold) = cluster.run(&cache, &[], &[]);
    assert_eq!(code, 0, "the distributed run failed: {stderr}");
    assert_eq!(cold["succeeded"], true);
    assert_eq!(cold["schema_version"], local["schema_version"]);

    // 1. The keys and the fingerprints of a local run.
    assert_eq!(by_step(&cold, "cache_key"), by_step(&local, "cache_key"));
    assert_eq!(fingerprints(&cold, &opaque), fingerprints(&local, &opaque));
    assert!(
        fingerprints(&cold, &opaque).values().all(Value::is_string),
        "every persistent artifact has a fingerprint: {cold}"
    );

    // 2. Both nodes ran tasks; the GPU step only the node with the slot.
    let nodes = by_step(&cold, "node");
    let used: BTreeSet<&str> = nodes.values().filter_map(|n| n.as_str()).collect();
    assert_eq!(used.len(), 2, "tasks ran on both nodes: {nodes:?}");
    let gpu_nodes: BTreeSet<&str> = cold["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["resources"].get(GPU_SLOT).is_some())
        .map(|n| n["node_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        gpu_nodes.len(),
        1,
        "one node has the slot: {}",
        cold["nodes"]
    );
    for (step, resources) in plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), &s["resources"]))
    {
        if resources.as_array().unwrap().iter().any(|r| r == "gpu") {
            assert!(
                gpu_nodes.contains(nodes[step].as_str().unwrap()),
                "GPU step `{step}` ran on {}, not on the node with the slot",
                nodes[step]
            );
        }
    }

    // 3. One task a group: the opaque group ran as one.
    assert_eq!(cold["tasks"], groups);
    let tasks = by_step(&cold, "task");
    assert_eq!(tasks["build_index"], tasks["probe_index"]);
    let shared = tasks
        .values()
        .filter(|t| **t == tasks["build_index"])
        .count();
    assert_eq!(shared, 2, "only the opaque group shares a task: {tasks:?}");

    // 4. A local run on the distributed cache hits as a second local run
    // does: every step but the opaque index's producer, whose output no
    // process can store.
    let local_again = local_run(&dir.path().join("local"));
    let local_on_distributed = local_run(&cache);
    assert_eq!(
        steps_with(&local_on_distributed, "ran"),
        BTreeSet::from(["build_index"])
    );
    assert_eq!(
        by_step(&local_on_distributed, "status"),
        by_step(&local_again, "status")
    );
    // And a distributed run on the warm cache runs only that group.
    let (code, stderr, warm) = cluster.run(&cache, &[], &[]);
    assert_eq!(code, 0, "the warm run failed: {stderr}");
    assert_eq!(warm["tasks"], 1, "only the opaque group runs: {warm}");
    let ran = steps_with(&warm, "ran");
    assert_eq!(ran, BTreeSet::from(["build_index", "probe_index"]));
    assert_eq!(by_step(&warm, "cache_key"), by_step(&local, "cache_key"));

    // 5. A failed step: exit 1, named with its error, dependents skipped.
    let failing = dir.path().join("failing");
    let fail = [("FLOWYML_DISTRIBUTED_FAIL", "join".to_owned())];
    let (code, stderr, failed) = cluster.run(&failing, &[], &fail);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("step `join` failed: failure injected into `join`"),
        "{stderr}"
    );
    assert_eq!(failed["succeeded"], false);
    assert_eq!(steps_with(&failed, "failed"), BTreeSet::from(["join"]));
    assert_eq!(steps_with(&failed, "skipped"), BTreeSet::from(["report"]));
    // With a retry, a step that fails once succeeds.
    let marker = dir.path().join("failed-once");
    let once = [(
        "FLOWYML_DISTRIBUTED_FAIL",
        format!("join:once:{}", marker.display()),
    )];
    let (code, stderr, retried) = cluster.run(&failing, &["--retries", "1"], &once);
    assert_eq!(code, 0, "{stderr}");
    assert!(marker.exists(), "the first attempt failed");
    assert_eq!(by_step(&retried, "attempts")["join"], 2);
    assert_eq!(by_step(&retried, "cache_key"), by_step(&local, "cache_key"));
    drop(cluster);
}

/// `cache serve` driven by hand, as a driver does: a client of its JSON
/// lines.
struct Serve {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Serve {
    fn start(cache: &Path) -> (Serve, Value) {
        Serve::start_for("distributed", cache)
    }

    fn start_for(pipeline: &str, cache: &Path) -> (Serve, Value) {
        let mut child = Command::new(example())
            .args(["cache", "serve", pipeline, "--cache-dir"])
            .arg(cache)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("cache serve");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).expect("hello");
        let hello = serde_json::from_str(&line).expect("JSON");
        (
            Serve {
                child,
                stdin,
                stdout,
            },
            hello,
        )
    }

    fn ask(&mut self, request: Value) -> Value {
        writeln!(self.stdin, "{request}").expect("request");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("reply");
        serde_json::from_str(&line).expect("JSON")
    }
}

/// Runs step `step` with `run-step`, its inputs from `inputs` (name, file).
fn run_step(step: &str, inputs: &[(&str, PathBuf)], out: &Path) -> Value {
    let mut cmd = Command::new(example());
    cmd.args(["run-step", "distributed", step, "--output-dir"])
        .arg(out);
    for (name, file) in inputs {
        cmd.arg("--input").arg(format!("{name}={}", file.display()));
    }
    let o = cmd.output().expect("run-step");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap()
}

#[test]
fn cache_serve_stores_only_what_it_verified_and_a_local_run_hits_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = dir.path().join("cache");
    let (mut serve, hello) = Serve::start(&cache);
    assert_eq!(hello["ready"], true);
    assert_eq!(hello["binary_sha256"], plan()["binary_sha256"]);
    assert_eq!(serve.ask(json!({"op": "begin"}))["ok"], true);

    // The run-time input, encoded by the program: its fingerprint is the
    // one a local run gives it.
    let rows = dir.path().join("rows.bin");
    let input = serve.ask(json!({"op": "input", "name": "rows", "json": "2000", "path": rows}));
    let local = local_run(&dir.path().join("local"));
    let fps = fingerprints(&local, &BTreeSet::new());
    assert_eq!(input["fingerprint"], fps["rows"]);
    let bad = serve.ask(json!({"op": "input", "name": "rows", "json": "\"many\"", "path": rows}));
    assert_eq!(bad["ok"], false);
    assert!(bad["error"].as_str().unwrap().contains("`rows`"), "{bad}");

    // A miss, with the key a local run computed.
    let inputs = json!({"rows": input["fingerprint"]});
    let miss = serve.ask(json!({"op": "lookup", "step": "samples", "inputs": inputs}));
    assert_eq!(miss["hit"], false, "{miss}");
    assert_eq!(miss["key"], by_step(&local, "cache_key")["samples"].clone());
    let unknown = serve.ask(json!({"op": "lookup", "step": "sampels", "inputs": inputs}));
    assert!(
        unknown["error"].as_str().unwrap().contains("`sampels`"),
        "{unknown}"
    );

    let out = dir.path().join("samples");
    let manifest = run_step("samples", &[("rows", rows.clone())], &out);
    let commit = |serve: &mut Serve, manifest: &Value| {
        serve.ask(json!({"op": "commit", "manifest": manifest, "dir": out, "inputs": inputs}))
    };
    // A manifest from another binary, a key computed from other inputs,
    // and bytes that are not what the manifest says are refused, naming
    // what is wrong.
    let mut other_binary = manifest.clone();
    other_binary["binary_sha256"] = json!("00".repeat(32));
    let refused = commit(&mut serve, &other_binary);
    assert!(
        refused["error"].as_str().unwrap().contains("binary"),
        "{refused}"
    );
    let mut other_key = manifest.clone();
    let key = miss["key"].as_str().unwrap();
    let flipped = if key.starts_with('0') { "1" } else { "0" };
    other_key["steps"][0]["cache_key"] = format!("{flipped}{}", &key[1..]).into();
    let refused = commit(&mut serve, &other_key);
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("step `samples`"),
        "{refused}"
    );
    let file = out.join(manifest["outputs"][0]["file"].as_str().unwrap());
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, b"not the samples").unwrap();
    let refused = commit(&mut serve, &manifest);
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("output `samples`"),
        "{refused}"
    );
    let hit = serve.ask(json!({"op": "lookup", "step": "samples", "inputs": inputs}));
    assert_eq!(hit["hit"], false, "nothing refused was stored");

    std::fs::write(&file, &bytes).unwrap();
    let stored = commit(&mut serve, &manifest);
    assert_eq!(stored["steps"][0]["stored"], true, "{stored}");
    let hit = serve.ask(json!({"op": "lookup", "step": "samples", "inputs": inputs}));
    assert_eq!(hit["hit"], true, "{hit}");
    assert_eq!(hit["outputs"][0]["fingerprint"], fps["samples"]);
    let got = dir.path().join("got.bin");
    let get = serve.ask(json!({"op": "get", "fingerprint": fps["samples"], "path": got}));
    assert_eq!(get["ok"], true, "{get}");
    assert_eq!(std::fs::read(&got).unwrap(), bytes);
    assert_eq!(
        serve.ask(json!({"op": "finish", "status": "succeeded"}))["ok"],
        true
    );
    drop(serve.stdin);
    assert!(serve.child.wait().unwrap().success());

    // A local run on that cache serves the step the server stored.
    let on_served = local_run(&cache);
    assert!(
        steps_with(&on_served, "cached").contains("samples"),
        "{on_served}"
    );
    assert_eq!(
        by_step(&on_served, "cache_key"),
        by_step(&local, "cache_key")
    );
}

/// `binary_sha256` of the program at `path`, as `plan --json` gives it.
fn plan_hash(path: &Path) -> Value {
    let out = Command::new(path)
        .args(["plan", "distributed", "--json"])
        .output()
        .expect("plan");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout).expect("JSON")["binary_sha256"].clone()
}

/// A cluster starts the program once per task: its hash is remembered
/// beside it, and a program changed since is hashed again.
#[test]
fn a_remembered_binary_hash_is_never_stale() {
    let dir = tempfile::tempdir().expect("temp dir");
    let program = dir.path().join("program");
    std::fs::copy(example(), &program).expect("a copy of the example");
    // A file this fresh may still change unseen: its hash is not kept.
    let first = plan_hash(&program);
    assert!(!dir.path().join("program.sha256").exists());
    std::thread::sleep(flowyml::incremental::RACY_WINDOW + Duration::from_millis(100));
    assert_eq!(plan_hash(&program), first);
    assert!(
        dir.path().join("program.sha256").exists(),
        "remembered once settled"
    );
    assert_eq!(plan_hash(&program), first);

    // One more byte after the end: the same code, another file.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&program)
        .expect("open");
    file.write_all(b"\0").expect("append");
    drop(file);
    let changed = plan_hash(&program);
    assert_ne!(changed, first, "a changed program is hashed again");
    let elsewhere = tempfile::tempdir().expect("temp dir");
    let copy = elsewhere.path().join("program");
    std::fs::copy(&program, &copy).expect("copy");
    assert_eq!(
        plan_hash(&copy),
        changed,
        "with nothing remembered, the same hash"
    );
}

/// A step that read a file on a worker is stored with the file's hash: a
/// local run after the file changed reruns it, never serves it stale.
#[test]
fn a_served_entry_keeps_the_files_its_step_read_elsewhere() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = dir.path().join("cache");
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "a\nb\n").unwrap();
    let path = notes.display().to_string();
    let out = dir.path().join("out");
    let ran = Command::new(example())
        .args(["run-step", "lines", "count_lines", "--input-json"])
        .arg(format!("path={}", json!(path)))
        .arg("--output-dir")
        .arg(&out)
        .output()
        .expect("run-step");
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["steps"][0]["files_read"][0]["path"], path.as_str());

    let mut serve = Serve::start_for("lines", &cache).0;
    let input = serve.ask(json!({
        "op": "input", "name": "path", "json": json!(path).to_string(),
        "path": dir.path().join("path.bin"),
    }));
    let inputs = json!({"path": input["fingerprint"]});
    let stored =
        serve.ask(json!({"op": "commit", "manifest": manifest, "dir": out, "inputs": inputs}));
    assert_eq!(stored["steps"][0]["stored"], true, "{stored}");
    let hit = serve.ask(json!({"op": "lookup", "step": "count_lines", "inputs": inputs}));
    assert_eq!(hit["hit"], true, "{hit}");
    drop(serve.stdin);
    assert!(serve.child.wait().unwrap().success());

    let local = |cache: &Path| -> Value {
        let out = Command::new(example())
            .args(["run", "lines", "--input-str"])
            .arg(format!("path={path}"))
            .args(["--output", "lines", "--json", "--cache-dir"])
            .arg(cache)
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("JSON")
    };
    let unchanged = local(&cache);
    assert_eq!(by_step(&unchanged, "status")["count_lines"], "cached");
    std::fs::write(&notes, "a\nb\nc\n").unwrap();
    let changed = local(&cache);
    assert_eq!(
        by_step(&changed, "status")["count_lines"],
        "ran",
        "{changed}"
    );
    assert_eq!(
        by_step(&changed, "rerun_reason")["count_lines"],
        "file_changed"
    );
    let lines = &changed["artifacts"].as_array().unwrap()[1];
    assert_eq!(lines["value"], 3, "{changed}");
}

/// An input given with `input_opaque` has a new fingerprint in each
/// process: its readers cannot be keyed elsewhere, and `cache serve` says
/// so instead of computing a key no worker would match.
#[test]
fn a_reader_of_an_opaque_input_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut serve, _) = Serve::start_for("given_index", &dir.path().join("cache"));
    let refused = serve.ask(json!({"op": "lookup", "step": "probe_index", "inputs": {}}));
    assert_eq!(refused["ok"], false);
    let error = refused["error"].as_str().unwrap();
    assert!(
        error.contains("step `probe_index`")
            && error.contains("`index`")
            && error.contains("input_opaque"),
        "{error}"
    );
}
