//! A pipeline described for programs outside it: `plan --json`, the
//! contract a cluster runner reads, and the subsets of steps it runs
//! elsewhere (`run-step`).
//!
//! # Groups
//! An artifact crosses a process boundary only in its encoding, so an edge
//! whose artifact cannot be encoded and decoded (a hash-only, encode-only
//! or opaque type) ties its producer and its consumer to one process. The
//! groups are the connected components of the steps over such edges; a
//! runner runs each group in one `run-step` call, and sends only
//! persistent artifacts between groups.

use super::{PLAN_FORMAT_VERSION, Pipeline};
use crate::artifact::CodecKind;
use crate::error::{Error, Result};
use crate::incremental::fingerprint::{CACHE_FORMAT_VERSION, Fingerprint};

impl Pipeline {
    /// The pipeline for programs: its inputs (with their types and whether
    /// they can be given from outside), its artifacts (type, producer,
    /// codec kind), its steps (inputs, outputs, resources, watched files,
    /// code fingerprint, time limit and retries) and the groups of steps
    /// that must share a process. What `plan --json` prints (the binary's
    /// hash added), in [`PLAN_FORMAT_VERSION`]; the book's command line
    /// chapter gives the schema.
    ///
    /// # Errors
    /// [`Error::InvalidPipeline`] if it does not validate.
    pub fn describe(&self) -> Result<serde_json::Value> {
        let plan = self.plan_with_every_input()?;
        let kind_of = |slot: usize| plan.codecs.get(slot).kind();
        let producer = |slot: usize| {
            let p = plan.producers[slot];
            (p != super::plan::INPUT).then(|| self.steps[p as usize].spec().name.to_string())
        };
        let names: Vec<&str> = plan.artifacts.names().collect();
        let artifacts: Vec<serde_json::Value> = names
            .iter()
            .enumerate()
            .map(|(slot, name)| {
                serde_json::json!({
                    "name": name,
                    "type": plan.artifacts.type_name(slot),
                    "producer": producer(slot),
                    "codec": kind_of(slot),
                })
            })
            .collect();
        let inputs: Vec<serde_json::Value> = self
            .required_inputs()
            .into_iter()
            .map(|i| {
                serde_json::json!({
                    "name": i.name,
                    "type": i.type_name,
                    "decoder": i.kind,
                    "from_outside": i.kind == CodecKind::Persistent,
                    "given": i.given,
                    "consumers": i.consumers,
                })
            })
            .collect();
        let groups = groups(&plan);
        let mut group_of = vec![0; self.steps.len()];
        for (g, members) in groups.iter().enumerate() {
            for &i in members {
                group_of[i] = g;
            }
        }
        let steps: Vec<serde_json::Value> = self
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let spec = s.spec();
                serde_json::json!({
                    "name": spec.name,
                    "inputs": spec.inputs.iter().map(|a| a.name.as_ref()).collect::<Vec<_>>(),
                    "outputs": spec.outputs.iter().map(|a| a.name.as_ref()).collect::<Vec<_>>(),
                    "resources": spec.resources,
                    "watch": spec.watch,
                    "code_fingerprint": Fingerprint::from_bytes(spec.code_fingerprint).to_hex(),
                    "retries": spec.retries,
                    "timeout_ms": spec.timeout.map(|t| t.as_millis()),
                    "group": group_of[i],
                })
            })
            .collect();
        let groups: Vec<serde_json::Value> = groups
            .iter()
            .map(|members| {
                serde_json::json!(
                    members
                        .iter()
                        .map(|&i| self.steps[i].spec().name.as_ref())
                        .collect::<Vec<_>>()
                )
            })
            .collect();
        Ok(serde_json::json!({
            "format_version": PLAN_FORMAT_VERSION,
            "flowyml_version": env!("CARGO_PKG_VERSION"),
            "cache_format_version": CACHE_FORMAT_VERSION,
            "pipeline": self.name,
            "inputs": inputs,
            "artifacts": artifacts,
            "steps": steps,
            "groups": groups,
        }))
    }

    /// The plan as if every run-time input its steps read were given: a
    /// plan describes the inputs, it does not need their values.
    pub(super) fn plan_with_every_input(&self) -> Result<super::plan::Plan> {
        let mut inputs = self.inputs.clone();
        for required in self.required_inputs().into_iter().filter(|r| !r.given) {
            let (spec, codec) = self.reader_of(&required.name)?;
            inputs.push(super::input::RuntimeInput {
                name: required.name,
                value: std::sync::Arc::new(()),
                type_id: (spec.type_id)(),
                type_name: spec.type_name.clone(),
                codec,
                fixed: Some(Fingerprint::default()),
            });
        }
        super::plan::Plan::build(&self.name, &self.catalog, &self.steps, &inputs)
    }

    /// A pipeline of the steps `names` of this one (shared, not copied),
    /// with its options and the run-time inputs those steps read that
    /// were given in code; the artifacts they read from the other steps
    /// are its inputs to give (see [`input_encoded`](Self::input_encoded)).
    ///
    /// # Errors
    /// [`Error::UnknownStep`] for a name no step has.
    pub fn subset(&self, names: &[String]) -> Result<Pipeline> {
        let mut sub = Pipeline::new(self.name.clone());
        for name in names {
            let Some(i) = self.steps.iter().position(|s| s.spec().name == *name) else {
                return Err(Error::UnknownStep {
                    pipeline: self.name.clone(),
                    step: name.clone(),
                    hint: flowyml_suggest::did_you_mean(
                        name,
                        self.steps.iter().map(|s| s.spec().name.as_ref()),
                    ),
                });
            };
            sub.add_shared_step(std::sync::Arc::clone(&self.steps[i]));
        }
        for input in &self.inputs {
            let read = sub
                .steps
                .iter()
                .any(|s| s.spec().inputs.iter().any(|i| i.name == input.name));
            if read {
                sub.inputs.push(input.clone());
            }
        }
        sub.keep_going = self.keep_going;
        sub.disabled_resources = self.disabled_resources.clone();
        sub.retries = self.retries;
        sub.backoff = self.backoff;
        Ok(sub)
    }
}

/// What a runner outside the process needs from the pipeline to share its
/// cache (`cache serve`): keys are computed here, never by the runner, so
/// a distributed run and a local one agree on them by construction.
impl Pipeline {
    /// The cache key of step `step` given its inputs' fingerprints
    /// (`input` by artifact name; an input given in code and not by
    /// `input` has its own) and its watched files' (`file`): the key a run
    /// of the step would have.
    ///
    /// # Errors
    /// [`Error::UnknownStep`], or [`Error::Usage`] naming the step and the
    /// input without a fingerprint (one given with
    /// [`input_opaque`](Self::input_opaque) has a new one in each process,
    /// so its readers cannot run in another) or the watched file that
    /// cannot be read.
    #[cfg(feature = "cli")]
    pub(crate) fn step_key(
        &self,
        step: &str,
        input: impl Fn(&str) -> Option<Fingerprint>,
        file: impl Fn(&std::path::Path) -> Result<Fingerprint>,
    ) -> Result<Fingerprint> {
        let spec = self.step_spec(step)?;
        let in_step = |e: String| Error::Usage(format!("step `{step}`: {e}"));
        let base = super::step_cache::base_key(spec).map_err(in_step)?;
        let inputs = spec.inputs.iter().map(|i| {
            if let Some(fp) = input(&i.name) {
                return Ok(fp);
            }
            match self.inputs.iter().find(|given| given.name == i.name) {
                Some(given) if given.codec.kind() == CodecKind::Opaque => Err(format!(
                    "its input `{}` is given in code with `input_opaque`: its fingerprint is new in each process, so the step cannot run in another; run it locally",
                    i.name
                )),
                Some(given) => given.fingerprint().map_err(|e| e.to_string()),
                None => Err(format!("no fingerprint for its input `{}`", i.name)),
            }
        });
        super::step_cache::extend_key(base, spec, inputs, file).map_err(in_step)
    }

    /// The spec of step `name`.
    ///
    /// # Errors
    /// [`Error::UnknownStep`], with the closest name.
    #[cfg(feature = "cli")]
    pub(crate) fn step_spec(&self, name: &str) -> Result<&crate::step::StepSpec> {
        self.steps
            .iter()
            .map(|s| s.spec())
            .find(|s| s.name == name)
            .ok_or_else(|| Error::UnknownStep {
                pipeline: self.name.clone(),
                step: name.to_owned(),
                hint: flowyml_suggest::did_you_mean(
                    name,
                    self.steps.iter().map(|s| s.spec().name.as_ref()),
                ),
            })
    }

    /// The fingerprint a run gives output `output` (its index) of a step
    /// with key `key` when the output is opaque.
    #[cfg(feature = "cli")]
    pub(crate) fn opaque_output_fingerprint(key: Fingerprint, output: usize) -> Fingerprint {
        super::step_cache::opaque_fingerprint(key, output)
    }

    /// The output hashes stored under `key` for a step of `outputs`
    /// outputs, where a run would serve them (see
    /// `step_cache::served_hashes`).
    ///
    /// # Errors
    /// If the store cannot be read.
    #[cfg(feature = "cli")]
    pub(crate) fn served_hashes(
        store: &crate::incremental::ArtifactStore,
        key: &Fingerprint,
        outputs: usize,
    ) -> Result<Option<Vec<Fingerprint>>> {
        super::step_cache::served_hashes(store, key, outputs)
    }

    /// The files step `step` read in its latest run in this process
    /// ([`StepContext::read_file`](crate::step::StepContext::read_file) and
    /// `watch`), with their hashes then: what a cache entry of the step
    /// made elsewhere must keep, so that it is never served stale.
    #[cfg(feature = "cli")]
    pub(crate) fn files_read(&self, step: &str) -> Vec<crate::step::FileRead> {
        let index = self.steps.iter().position(|s| s.spec().name == step);
        match (&self.cache, index) {
            (Some(cache), Some(i)) => cache.files_read(i),
            _ => Vec::new(),
        }
    }

    /// The blob a cache entry keeps for the files its step read.
    ///
    /// # Errors
    /// If they cannot be encoded.
    #[cfg(feature = "cli")]
    pub(crate) fn files_read_blob(reads: &[crate::step::FileRead]) -> Result<Vec<u8>> {
        super::step_cache::reads_blob(reads)
    }

    /// Run-time input `name` given as JSON, in the cache's own encoding:
    /// the bytes `run-step --input` takes, whose hash is the fingerprint a
    /// run gives the input.
    ///
    /// # Errors
    /// As [`input_json`](Self::input_json); [`Error::Input`] for a type
    /// that has no encoding.
    #[cfg(feature = "cli")]
    pub(crate) fn encode_json_input(&self, name: &str, json: &str) -> Result<Vec<u8>> {
        let input = self.json_input(name, json)?;
        match input.codec.fingerprint(&*input.value) {
            Some(Ok(crate::artifact::Fingerprinted {
                encoded: Some(bytes),
                ..
            })) => Ok(bytes),
            Some(Err(e)) => Err(Error::Input {
                input: name.to_owned(),
                message: format!("cannot be encoded: {e}"),
            }),
            _ => Err(Error::Input {
                input: name.to_owned(),
                message: format!(
                    "`{}` has no encoding: it cannot be sent to another process",
                    input.type_name
                ),
            }),
        }
    }
}

/// The groups of steps tied together by edges that cannot cross a
/// process, each in step order, the groups in the order of their first
/// step.
fn groups(plan: &super::plan::Plan) -> Vec<Vec<usize>> {
    let n = plan.steps();
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for consumer in 0..n {
        for &slot in plan.inputs_of(consumer) {
            let slot = slot as usize;
            let producer = plan.producers[slot];
            if producer == super::plan::INPUT
                || plan.codecs.get(slot).kind() == CodecKind::Persistent
            {
                continue;
            }
            let (a, b) = (
                root(&mut parent, producer as usize),
                root(&mut parent, consumer),
            );
            parent[a.max(b)] = a.min(b);
        }
    }
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut index_of_root = vec![usize::MAX; n];
    for i in 0..n {
        let r = root(&mut parent, i);
        if index_of_root[r] == usize::MAX {
            index_of_root[r] = groups.len();
            groups.push(Vec::new());
        }
        groups[index_of_root[r]].push(i);
    }
    groups
}
