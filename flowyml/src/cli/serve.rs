//! `cache serve`: a pipeline's persistent cache for a runner that runs its
//! steps in other processes (a cluster driver), as JSON lines on stdin and
//! stdout.
//!
//! The runner never computes a key: it sends the fingerprints of a step's
//! inputs, and this program, which has the step's code fingerprint and
//! options, computes the key as a run would. A distributed run and a local
//! run therefore share entries by construction.
//!
//! # Protocol
//! On start one line `{"ready": true, "protocol": 1, "pipeline": ...,
//! "binary_sha256": ...}`; then, for each request line, one reply line:
//! the request's result with `"ok": true`, or `{"ok": false, "error": ...}`
//! naming the step, artifact or field at fault (the server goes on).
//!
//! | `op` | request fields | reply |
//! |---|---|---|
//! | `begin` | | `run_id`: a run in the history |
//! | `input` | `name`, `json`, `path` | the run-time input encoded to `path`: `fingerprint`, `bytes` |
//! | `lookup` | `step`, `inputs` (name → fingerprint) | `key`, `hit`, and on a hit `outputs` (`name`, `fingerprint`) |
//! | `get` | `fingerprint`, `path` | the stored bytes, verified, written to `path`: `bytes` |
//! | `commit` | `manifest` (of `run-step`), `dir` (its output directory), `inputs` (name → fingerprint) | `steps`: `name`, `key`, `stored` |
//! | `finish` | `status` (`succeeded` or `failed`) | `run_id` |
//!
//! A commit is verified before anything is stored: the manifest's binary
//! is this one, each step's key is the key of its inputs here, and each
//! output's bytes hash to the fingerprint the manifest gives. A mismatch
//! is an error, never a silent miss. Outputs that cannot be stored
//! (opaque) keep their step in memory of the worker only, as in a local
//! run; the fingerprint of an opaque output is derived from its
//! producer's key, so its consumers' keys are still checked.
//!
//! End of input ends the server; a run begun and not finished is recorded
//! as failed.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::{Value, json};

use super::args::stdout_error;
use super::plan::binary_sha256;
use crate::artifact::CodecKind;
use crate::error::{Error, Result};
use crate::incremental::{ArtifactStore, Fingerprint, RunId, RunStatus, StepExecution};
use crate::pipeline::Pipeline;
use crate::registry;
use crate::step::FileRead;

/// The version of the request and reply lines.
const PROTOCOL_VERSION: u32 = 1;

/// The arguments of `cache serve`.
#[derive(Args, Debug)]
pub(super) struct ServeArgs {
    /// The pipeline whose steps' keys it computes.
    pipeline: String,
}

/// Serves `store` for `args.pipeline` over stdin and `out`.
pub(super) fn serve(args: &ServeArgs, store: ArtifactStore, out: &mut dyn Write) -> Result<()> {
    let pipeline = registry::pipeline(&args.pipeline)?;
    let mut server = Server::new(pipeline, Cache(store))?;
    let hello = json!({
        "ready": true,
        "protocol": PROTOCOL_VERSION,
        "pipeline": args.pipeline,
        "binary_sha256": server.binary,
    });
    writeln!(out, "{hello}").map_err(stdout_error)?;
    out.flush().map_err(stdout_error)?;
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(|e| Error::Usage(format!("reading requests on stdin: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let reply = serde_json::from_str::<Value>(&line)
            .map_err(|e| format!("a request is one JSON object a line: {e}"))
            .and_then(|request| server.handle(&request));
        let reply = match reply {
            Ok(mut reply) => {
                reply["ok"] = true.into();
                reply
            }
            Err(error) => json!({"ok": false, "error": error}),
        };
        writeln!(out, "{reply}").map_err(stdout_error)?;
        out.flush().map_err(stdout_error)?;
    }
    server.end_of_input()
}

/// Every call this module makes on the store, in one place.
struct Cache(ArtifactStore);

impl Cache {
    fn served(&self, key: &Fingerprint, outputs: usize) -> Result<Option<Vec<Fingerprint>>> {
        Pipeline::served_hashes(&self.0, key, outputs)
    }

    fn bytes(&self, hash: &Fingerprint) -> Result<Option<Vec<u8>>> {
        self.0.get_bytes(hash)
    }

    fn file(&self, path: &Path) -> Result<Fingerprint> {
        self.0.file_fingerprint(path)
    }

    fn commit(
        &self,
        key: &Fingerprint,
        step: &str,
        outputs: &[Vec<u8>],
        duration: Duration,
    ) -> Result<Vec<Fingerprint>> {
        self.0.commit_encoded(key, step, outputs, duration)
    }

    fn begin(&self, pipeline: &str) -> Result<RunId> {
        self.0.begin_run(pipeline)
    }

    fn finish(&self, run: RunId, steps: &[StepExecution], status: RunStatus) -> Result<()> {
        self.0.record(run, steps)?;
        self.0.finish_run(run, status)?;
        // Durable once, at the run's end, as a local run is.
        if self.0.options().durable {
            self.0.sync_written(&[])?;
        }
        Ok(())
    }
}

struct Server {
    pipeline: Pipeline,
    /// The opaque artifacts, as the plan gives them.
    opaque: std::collections::HashSet<String>,
    binary: &'static str,
    cache: Cache,
    run: Option<RunId>,
    executions: Vec<StepExecution>,
}

/// A request's field `name` as a string.
fn text<'r>(request: &'r Value, name: &str) -> std::result::Result<&'r str, String> {
    request[name]
        .as_str()
        .ok_or_else(|| format!("the request has no string field `{name}`"))
}

fn fingerprint(text: &str, what: &str) -> std::result::Result<Fingerprint, String> {
    text.parse()
        .map_err(|e| format!("{what}: `{text}` is not a fingerprint: {e}"))
}

/// A request's map of artifact names to fingerprints in field `field`.
fn fingerprints(
    request: &Value,
    field: &str,
) -> std::result::Result<HashMap<String, Fingerprint>, String> {
    let Some(map) = request[field].as_object() else {
        return Ok(HashMap::new());
    };
    map.iter()
        .map(|(name, fp)| {
            let what = format!("artifact `{name}`");
            let fp = fp
                .as_str()
                .ok_or_else(|| format!("{what}: its fingerprint is not a string"))?;
            Ok((name.clone(), fingerprint(fp, &what)?))
        })
        .collect()
}

/// A manifest step's `files_read`: each `{path, hash}`. A manifest without
/// the field (an older program) is refused: its entries could be served
/// stale.
fn files_read(step: &str, list: &Value) -> std::result::Result<Vec<FileRead>, String> {
    let Some(list) = list.as_array() else {
        return Err(format!(
            "step `{step}`: the manifest has no `files_read`: the worker's program is older than this one"
        ));
    };
    list.iter()
        .map(|r| {
            let path = r["path"]
                .as_str()
                .ok_or_else(|| format!("step `{step}`: a file read has no path"))?;
            let hash = fingerprint(
                r["hash"].as_str().unwrap_or_default(),
                &format!("step `{step}`: file `{path}`"),
            )?;
            Ok(FileRead {
                path: PathBuf::from(path),
                hash,
            })
        })
        .collect()
}

fn write_file(path: &str, bytes: &[u8]) -> std::result::Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("{path}: {e}"))
}

impl Server {
    fn new(pipeline: Pipeline, cache: Cache) -> Result<Self> {
        let plan = pipeline.describe()?;
        // A unit variant of a derived `Serialize` enum always serialises
        // (to its name), whatever the pipeline.
        let opaque = serde_json::to_value(CodecKind::Opaque).expect("a kind serialises");
        let opaque = plan["artifacts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["codec"] == opaque)
            .filter_map(|a| Some(a["name"].as_str()?.to_owned()))
            .collect();
        Ok(Server {
            pipeline,
            opaque,
            binary: binary_sha256()?,
            cache,
            run: None,
            executions: Vec::new(),
        })
    }

    fn handle(&mut self, request: &Value) -> std::result::Result<Value, String> {
        match text(request, "op")? {
            "begin" => self.begin(),
            "input" => self.input(request),
            "lookup" => self.lookup(request),
            "get" => self.get(request),
            "commit" => self.commit(request),
            "finish" => self.finish(text(request, "status")?),
            other => Err(format!(
                "unknown op `{other}`: the ops are begin, input, lookup, get, commit and finish"
            )),
        }
    }

    fn begin(&mut self) -> std::result::Result<Value, String> {
        if let Some(run) = self.run {
            return Err(format!("run {} is already begun: finish it first", run.0));
        }
        let run = self
            .cache
            .begin(self.pipeline.name())
            .map_err(|e| e.to_string())?;
        self.run = Some(run);
        Ok(json!({"run_id": run.0}))
    }

    fn input(&self, request: &Value) -> std::result::Result<Value, String> {
        let name = text(request, "name")?;
        let bytes = self
            .pipeline
            .encode_json_input(name, text(request, "json")?)
            .map_err(|e| e.to_string())?;
        write_file(text(request, "path")?, &bytes)?;
        Ok(json!({
            "fingerprint": Fingerprint::of_bytes(&bytes).to_hex(),
            "bytes": bytes.len(),
        }))
    }

    fn key(
        &self,
        step: &str,
        inputs: &HashMap<String, Fingerprint>,
    ) -> std::result::Result<Fingerprint, String> {
        self.pipeline
            .step_key(
                step,
                |name| inputs.get(name).copied(),
                |p| self.cache.file(p),
            )
            .map_err(|e| e.to_string())
    }

    fn lookup(&mut self, request: &Value) -> std::result::Result<Value, String> {
        let started = Instant::now();
        let step = text(request, "step")?;
        let key = self.key(step, &fingerprints(request, "inputs")?)?;
        let spec = self.pipeline.step_spec(step).map_err(|e| e.to_string())?;
        let served = self
            .cache
            .served(&key, spec.outputs.len())
            .map_err(|e| format!("step `{step}`: {e}"))?;
        let Some(hashes) = served else {
            return Ok(json!({"key": key.to_hex(), "hit": false}));
        };
        let outputs: Vec<Value> = spec
            .outputs
            .iter()
            .zip(&hashes)
            .map(|(o, h)| json!({"name": o.name, "fingerprint": h.to_hex()}))
            .collect();
        self.executions.push(StepExecution {
            step: step.to_owned(),
            key,
            outputs: hashes,
            duration: started.elapsed(),
            cached: true,
        });
        Ok(json!({"key": key.to_hex(), "hit": true, "outputs": outputs}))
    }

    fn get(&self, request: &Value) -> std::result::Result<Value, String> {
        let hash = fingerprint(text(request, "fingerprint")?, "field `fingerprint`")?;
        let bytes = self
            .cache
            .bytes(&hash)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("artifact {hash} is not in the cache"))?;
        write_file(text(request, "path")?, &bytes)?;
        Ok(json!({"bytes": bytes.len()}))
    }

    /// Verifies a worker's manifest and stores the outputs of each step
    /// that ran, in the pipeline's step order (a producer before its
    /// consumers, so each key is checked against verified inputs).
    fn commit(&mut self, request: &Value) -> std::result::Result<Value, String> {
        let manifest = &request["manifest"];
        let dir = PathBuf::from(text(request, "dir")?);
        let theirs = manifest["binary_sha256"].as_str().unwrap_or("none");
        if theirs != self.binary {
            return Err(format!(
                "the worker ran binary {theirs}, not {} which serves this cache: ship the same binary to every node",
                self.binary
            ));
        }
        let mut known = fingerprints(request, "inputs")?;
        let ran: HashMap<&str, &Value> = manifest["steps"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["status"] == "ran")
            .filter_map(|s| Some((s["name"].as_str()?, s)))
            .collect();
        let files: HashMap<&str, &Value> = manifest["outputs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| Some((o["name"].as_str()?, o)))
            .collect();
        let order: Vec<String> = self
            .pipeline
            .steps()
            .map(|s| s.spec().name.to_string())
            .filter(|name| ran.contains_key(name.as_str()))
            .collect();
        let mut replies = Vec::new();
        for name in order {
            let reply = self.commit_step(&name, ran[name.as_str()], &files, &dir, &mut known)?;
            replies.push(reply);
        }
        Ok(json!({"steps": replies}))
    }

    fn commit_step(
        &mut self,
        name: &str,
        step: &Value,
        files: &HashMap<&str, &Value>,
        dir: &Path,
        known: &mut HashMap<String, Fingerprint>,
    ) -> std::result::Result<Value, String> {
        let claimed = fingerprint(
            step["cache_key"].as_str().unwrap_or_default(),
            &format!("step `{name}`: its cache key"),
        )?;
        let key = self.key(name, known)?;
        if key != claimed {
            return Err(format!(
                "step `{name}`: the worker computed key {claimed}, but its inputs give {key} here"
            ));
        }
        let spec = self.pipeline.step_spec(name).map_err(|e| e.to_string())?;
        let mut encoded = Vec::new();
        let mut storable = true;
        for (j, output) in spec.outputs.iter().enumerate() {
            if self.opaque.contains(output.name.as_ref()) {
                known.insert(
                    output.name.to_string(),
                    Pipeline::opaque_output_fingerprint(key, j),
                );
                storable = false;
                continue;
            }
            let Some(file) = files.get(output.name.as_ref()) else {
                // Hash-only and encode-only outputs are not sent: neither
                // is stored, and their consumers' keys cannot be checked.
                storable = false;
                continue;
            };
            let path = dir.join(file["file"].as_str().unwrap_or_default());
            let bytes = std::fs::read(&path).map_err(|e| {
                format!(
                    "step `{name}`: output `{}`: {}: {e}",
                    output.name,
                    path.display()
                )
            })?;
            let fp = Fingerprint::of_bytes(&bytes);
            if file["fingerprint"].as_str() != Some(fp.to_hex().as_str()) {
                return Err(format!(
                    "step `{name}`: output `{}` hashes to {fp}, not to the fingerprint {} of the manifest",
                    output.name, file["fingerprint"]
                ));
            }
            known.insert(output.name.to_string(), fp);
            encoded.push(bytes);
        }
        // The files the step read on its node: kept with the entry, so that
        // a lookup here serves it only while this node's copies match.
        let reads = files_read(name, &step["files_read"])?;
        if storable && !reads.is_empty() {
            let blob = Pipeline::files_read_blob(&reads)
                .map_err(|e| format!("step `{name}`: its files read: {e}"))?;
            encoded.push(blob);
        }
        let duration = Duration::from_micros(step["duration_us"].as_u64().unwrap_or(0));
        let hashes = if storable {
            let mut hashes = self
                .cache
                .commit(&key, name, &encoded, duration)
                .map_err(|e| format!("step `{name}`: storing its outputs: {e}"))?;
            // The list of files read is the entry's, not an output.
            hashes.truncate(spec.outputs.len());
            hashes
        } else {
            Vec::new()
        };
        self.executions.push(StepExecution {
            step: name.to_owned(),
            key,
            outputs: hashes,
            duration,
            cached: false,
        });
        Ok(json!({"name": name, "key": key.to_hex(), "stored": storable}))
    }

    fn finish(&mut self, status: &str) -> std::result::Result<Value, String> {
        let status = match status {
            "succeeded" => RunStatus::Succeeded,
            "failed" => RunStatus::Failed,
            other => {
                return Err(format!(
                    "status `{other}`: a run finishes `succeeded` or `failed`"
                ));
            }
        };
        let run = self
            .run
            .take()
            .ok_or("no run is begun: send `begin` first")?;
        let steps = std::mem::take(&mut self.executions);
        self.cache
            .finish(run, &steps, status)
            .map_err(|e| e.to_string())?;
        Ok(json!({"run_id": run.0}))
    }

    /// The runner went away: a run it began and did not finish failed.
    fn end_of_input(mut self) -> Result<()> {
        if self.run.is_some() {
            self.finish("failed").map_err(Error::Usage)?;
        }
        Ok(())
    }
}
