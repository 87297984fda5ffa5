//! `runs` and `cache`: what the persistent cache holds and remembers.

use std::io::Write;

use clap::Subcommand;

use super::args::{CacheArgs, human_bytes, stdout_error};
use crate::error::{Error, Result};
use crate::incremental::{ArtifactStore, RunId};

/// `cache` subcommands.
#[derive(Subcommand, Debug)]
pub(super) enum CacheCommand {
    /// Entries, artifacts, bytes, hits and misses.
    Stats {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove every entry and artifact (the run history stays).
    Clear,
    /// Serve the cache to a runner outside this program (a cluster
    /// driver): JSON lines on stdin and stdout.
    Serve(super::serve::ServeArgs),
}

/// `runs` subcommands.
#[derive(Subcommand, Debug)]
pub(super) enum RunsCommand {
    /// One run, step by step: status, duration, cache key, outputs.
    Show {
        /// The run's id, as `runs` lists it.
        id: i64,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Drop all but the latest runs from the history (the cache's entries
    /// stay). Runs beyond 1,000 are dropped as each run finishes anyway.
    Prune {
        /// How many of the latest runs to keep.
        #[arg(long, value_name = "N")]
        keep: u64,
    },
}

/// How many runs `runs` lists without `--all`.
const LATEST: usize = 20;

/// The store, if the cache directory exists: a command that only reads
/// never creates one.
fn open(cache: &CacheArgs) -> Result<Option<ArtifactStore>> {
    if !cache.cache_dir.join("meta.sqlite").exists() {
        return Ok(None);
    }
    ArtifactStore::open(&cache.cache_dir).map(Some)
}

pub(super) fn cache(command: CacheCommand, cache: &CacheArgs, out: &mut dyn Write) -> Result<()> {
    match command {
        CacheCommand::Stats { json } => {
            let s = match open(cache)? {
                Some(store) => store.stats()?,
                None => Default::default(),
            };
            if json {
                let json = serde_json::json!({
                    "dir": cache.cache_dir,
                    "entries": s.entries,
                    "artifacts": s.artifacts,
                    "bytes": s.bytes,
                    "hits": s.hits,
                    "misses": s.misses,
                    "evictions": s.evictions,
                    "runs": s.runs,
                });
                writeln!(out, "{json}").map_err(stdout_error)
            } else {
                writeln!(
                    out,
                    "cache {}: {} entries, {} artifacts, {}, {} hits, {} misses, {} evictions, {} runs",
                    cache.cache_dir.display(),
                    s.entries,
                    s.artifacts,
                    human_bytes(s.bytes),
                    s.hits,
                    s.misses,
                    s.evictions,
                    s.runs
                )
                .map_err(stdout_error)
            }
        }
        CacheCommand::Clear => {
            if let Some(store) = open(cache)? {
                store.clear()?;
            }
            writeln!(out, "cleared {}", cache.cache_dir.display()).map_err(stdout_error)
        }
        // The one cache command that writes: it creates the cache.
        CacheCommand::Serve(args) => {
            super::serve::serve(&args, ArtifactStore::open(&cache.cache_dir)?, out)
        }
    }
}

pub(super) fn runs(
    command: Option<RunsCommand>,
    all: bool,
    cache: &CacheArgs,
    out: &mut dyn Write,
) -> Result<()> {
    let Some(store) = open(cache)? else {
        return match command {
            Some(RunsCommand::Show { id, .. }) => Err(Error::Usage(format!(
                "no run {id}: there is no cache in {} yet",
                cache.cache_dir.display()
            ))),
            _ => writeln!(
                out,
                "no runs: there is no cache in {} yet",
                cache.cache_dir.display()
            )
            .map_err(stdout_error),
        };
    };
    match command {
        Some(RunsCommand::Show { id, json }) => show(&store, id, json, out),
        Some(RunsCommand::Prune { keep }) => {
            let dropped = store.prune_runs(keep)?;
            writeln!(out, "dropped {dropped} runs, kept the latest {keep}").map_err(stdout_error)
        }
        None => list(&store, all, out),
    }
}

fn list(store: &ArtifactStore, all: bool, out: &mut dyn Write) -> Result<()> {
    let runs = store.runs()?;
    writeln!(
        out,
        "{:>5}  {:<20}  {:<20}  {:<11}  {:>12}  {:>5}  {:>6}",
        "run", "started", "pipeline", "status", "duration", "steps", "cached"
    )
    .map_err(stdout_error)?;
    let shown = if all { runs.len() } else { LATEST };
    for r in runs.iter().take(shown) {
        let duration = r
            .duration
            .map_or_else(|| "-".to_owned(), |d| format!("{d:.2?}"));
        writeln!(
            out,
            "{:>5}  {:<20}  {:<20}  {:<11}  {:>12}  {:>5}  {:>6}",
            r.id.0,
            humantime::format_rfc3339_seconds(r.started).to_string(),
            r.pipeline,
            r.status.to_string(),
            duration,
            r.steps,
            r.cached
        )
        .map_err(stdout_error)?;
    }
    if runs.len() > shown {
        writeln!(
            out,
            "({} older runs not shown: `runs --all` lists every one)",
            runs.len() - shown
        )
        .map_err(stdout_error)?;
    }
    Ok(())
}

fn show(store: &ArtifactStore, id: i64, json: bool, out: &mut dyn Write) -> Result<()> {
    let runs = store.runs()?;
    let Some(run) = runs.iter().find(|r| r.id == RunId(id)) else {
        let latest = runs.first().map_or_else(
            || "the history is empty".to_owned(),
            |r| format!("the latest is {}", r.id.0),
        );
        return Err(Error::Usage(format!(
            "no run {id} in the history: {latest}"
        )));
    };
    let steps = store.run_steps(run.id)?;
    if json {
        let steps: Vec<serde_json::Value> = steps
            .iter()
            .map(|s| {
                serde_json::json!({
                    "name": s.step,
                    "status": if s.cached { "cached" } else { "ran" },
                    "duration_us": u64::try_from(s.duration.as_micros()).unwrap_or(u64::MAX),
                    "cache_key": s.key.to_hex(),
                    "outputs": s.outputs.iter().map(|o| o.to_hex()).collect::<Vec<_>>(),
                })
            })
            .collect();
        let json = serde_json::json!({
            "run_id": run.id.0,
            "pipeline": run.pipeline,
            "status": run.status.to_string(),
            "started_at": humantime::format_rfc3339_micros(run.started).to_string(),
            "duration_us": run.duration.map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
            "steps": steps,
        });
        return writeln!(out, "{json}").map_err(stdout_error);
    }
    writeln!(
        out,
        "run {} of `{}`: {}, started {}{}",
        run.id.0,
        run.pipeline,
        run.status,
        humantime::format_rfc3339_seconds(run.started),
        run.duration
            .map_or_else(String::new, |d| format!(", took {d:.2?}"))
    )
    .map_err(stdout_error)?;
    let width = steps.iter().map(|s| s.step.len()).max().unwrap_or(4).max(4);
    writeln!(
        out,
        "{:<width$}  {:<6}  {:>10}  {:<16}  outputs",
        "step", "status", "duration", "cache key"
    )
    .map_err(stdout_error)?;
    for s in &steps {
        let outputs: Vec<String> = s
            .outputs
            .iter()
            .map(|o| o.to_hex()[..12].to_owned())
            .collect();
        writeln!(
            out,
            "{:<width$}  {:<6}  {:>10.2?}  {:<16}  {}",
            s.step,
            if s.cached { "cached" } else { "ran" },
            s.duration,
            &s.key.to_hex()[..16],
            outputs.join(" ")
        )
        .map_err(stdout_error)?;
    }
    Ok(())
}
