//! [`StepContext`]: a step's view of the run.

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::spec::StepSpec;
use crate::artifact::ArtifactType;
use crate::error::{BoxError, Error};
use crate::incremental::fingerprint::{Fingerprint, hash_file};
use crate::resource::Resources;
use crate::slot::{Artifact, Slot, Value};

/// A step's view of the run: its inputs, its output slots, the run's
/// resources, and notes for its record.
pub struct StepContext<'a> {
    /// The run's steps' specs and this step's index among them: its spec
    /// is read only when asked for (a name for an error, say), so that a
    /// step that runs without incident costs its run no load of its own
    /// heap object.
    pub(crate) specs: &'a dyn Specs,
    pub(crate) index: usize,
    /// Every artifact slot of the run.
    pub(crate) slots: &'a [Slot],
    /// The slot of each of the step's inputs, in parameter order.
    pub(crate) inputs: &'a [u32],
    /// The slots of the step's outputs (consecutive), so that writing one
    /// does not read the step's spec.
    pub(crate) outputs: std::ops::Range<usize>,
    pub(crate) resources: &'a Resources,
    /// The pipeline's canceller and the run's (or this attempt's) stop.
    pub(crate) cancel: &'a AtomicBool,
    pub(crate) stop: &'a AtomicBool,
    /// What the step said while it ran, besides its outputs.
    pub(crate) gathered: Gathered,
    /// How many of its outputs the step wrote (each at most once), so
    /// that whether it wrote them all is one comparison.
    pub(crate) written: usize,
}

/// Where a context finds its step's spec: a run's steps, by index.
pub(crate) trait Specs: Sync {
    /// Step `i`'s spec.
    fn spec(&self, i: usize) -> &StepSpec;
}

/// What a step's context gathers while the step runs, besides its outputs:
/// handed back to the run (across a thread, for a step with a time limit)
/// when the step returns. Most steps say nothing, so it is one word, and
/// [`Said`] is allocated only when a step first says something: a run's
/// per-step cost carries no three empty lists to build and drop.
#[derive(Debug, Default)]
pub(crate) struct Gathered(Option<Box<Said>>);

impl Gathered {
    /// Whether the step said nothing.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// What the step said, to add to.
    pub fn said(&mut self) -> &mut Said {
        self.0.get_or_insert_with(Box::default)
    }

    /// What the step said (nothing, if it said nothing).
    pub fn into_said(self) -> Said {
        self.0.map(|said| *said).unwrap_or_default()
    }
}

/// What a step said while it ran: see [`Gathered`].
#[derive(Debug, Default)]
pub(crate) struct Said {
    /// Notes for the step's record.
    pub notes: Vec<String>,
    /// A misuse of the context (an output index out of range, an output
    /// written twice): the step fails with it once it returns.
    pub misuse: Option<String>,
    /// The files the step read at run time, with the content hash each had
    /// when read: kept with the step's cache entry, which is served again
    /// only while every one still has that hash.
    pub reads: Vec<FileRead>,
}

/// A file a step read at run time, and its content hash then.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileRead {
    /// The path as the step gave it.
    pub path: PathBuf,
    /// The blake3 hash of the content the step read.
    pub hash: Fingerprint,
}

impl<'a> StepContext<'a> {
    /// Input `i` (in parameter order) as a `&T`.
    ///
    /// # Errors
    /// If the input is absent or of another type (validation prevents both
    /// for steps made by `#[step]`).
    #[inline]
    pub fn input<T: 'static>(&self, i: usize) -> Result<&'a T, BoxError> {
        match self.value(i)?.get::<T>() {
            Some(value) => Ok(value),
            None => Err(self.wrong_type::<T>(i)),
        }
    }

    /// How many inputs the step has: a step built at run time can read
    /// them all without keeping their count in its closure (a closure that
    /// captures nothing costs a run no load of its own).
    ///
    /// ```
    /// use flowyml::{Pipeline, step::FnStep};
    ///
    /// let mut p = Pipeline::new("sum");
    /// p.input("a", 1_u64).input("b", 2_u64);
    /// p.add_step(
    ///     FnStep::builder("sum")
    ///         .input::<u64>("a")
    ///         .input::<u64>("b")
    ///         .output::<u64>("total")
    ///         .build(|ctx| {
    ///             let mut total = 0;
    ///             for i in 0..ctx.input_count() {
    ///                 total += *ctx.input::<u64>(i)?;
    ///             }
    ///             ctx.set_output(0, total);
    ///             Ok(())
    ///         }),
    /// );
    /// assert_eq!(*p.run()?.get::<u64>("total")?, 3);
    /// # Ok::<(), flowyml::Error>(())
    /// ```
    #[inline]
    pub fn input_count(&self) -> usize {
        self.inputs.len()
    }

    /// Input `i` as a shared artifact (a small scalar, which the run keeps
    /// inline, is put in an `Arc` for it).
    ///
    /// # Errors
    /// If the step has no input `i`, or it has no value.
    pub fn input_artifact(&self, i: usize) -> Result<Artifact, BoxError> {
        self.value(i).map(Value::to_artifact)
    }

    #[inline]
    fn value(&self, i: usize) -> Result<&'a Value, BoxError> {
        match self
            .inputs
            .get(i)
            .and_then(|&slot| self.slots[slot as usize].get())
        {
            Some(value) => Ok(value),
            None => Err(self.no_value(i)),
        }
    }

    #[cold]
    fn no_value(&self, i: usize) -> BoxError {
        format!("input #{i} of step `{}` has no value", self.spec().name).into()
    }

    #[cold]
    fn wrong_type<T>(&self, i: usize) -> BoxError {
        format!(
            "input `{}` of step `{}` is not a `{}`",
            self.spec().inputs[i].name,
            self.spec().name,
            crate::type_name::of::<T>()
        )
        .into()
    }

    /// Stores output `j` (in output order). An index out of range, or a
    /// second write of the same output, fails the step when it returns.
    #[inline]
    pub fn set_output<T: ArtifactType>(&mut self, j: usize, value: T) {
        if j < self.outputs.len() {
            self.set_value(j, Value::new(value));
        } else {
            self.out_of_range(j);
        }
    }

    /// Stores output `j` as an already shared artifact; misuse fails the
    /// step as with [`set_output`](Self::set_output).
    pub fn set_output_artifact(&mut self, j: usize, value: Artifact) {
        if j < self.outputs.len() {
            self.set_value(j, Value::from(value));
        } else {
            self.out_of_range(j);
        }
    }

    #[inline]
    #[allow(unsafe_code)]
    fn set_value(&mut self, j: usize, value: Value) {
        // SAFETY: a context is made for one visit of its step (or one
        // attempt, in slots of its own), the one writer of its output slots
        // (see `slot`); `&mut self` keeps it on one thread at a time.
        match unsafe { self.slots[self.outputs.start + j].set(value) } {
            Ok(()) => self.written += 1,
            Err(_) => self.written_twice(j),
        }
    }

    /// Whether the step wrote every one of its outputs.
    #[inline]
    pub(crate) fn wrote_every_output(&self) -> bool {
        self.written == self.outputs.len()
    }

    #[cold]
    fn written_twice(&mut self, j: usize) {
        let spec = self.spec();
        self.gathered.said().misuse.get_or_insert_with(|| {
            format!(
                "output `{}` of step `{}` was written twice",
                spec.outputs[j].name, spec.name
            )
        });
    }

    #[cold]
    fn out_of_range(&mut self, j: usize) {
        let n = self.outputs.len();
        let name = &self.spec().name;
        self.gathered.said().misuse.get_or_insert_with(|| {
            format!(
                "step `{}` wrote output #{j}, but it has {n} output{}",
                name,
                if n == 1 { "" } else { "s" }
            )
        });
    }

    /// The run's resource of type `R`.
    ///
    /// # Errors
    /// If the run has no such resource, with the reason its provider gave.
    pub fn resource<R: Any + Send + Sync>(&self) -> Result<&'a R, BoxError> {
        self.resources.get::<R>().ok_or_else(|| {
            let reason = self
                .resources
                .missing_reason::<R>()
                .unwrap_or("this run does not provide one");
            let short = crate::type_name::of::<R>();
            format!("step `{}` needs a `{short}`: {reason}", self.spec().name).into()
        })
    }

    /// Reads the file at `path`, and records it with the step's cache
    /// entry: the entry is served again only while the file still has the
    /// content read here. The way for a step to read a file whose path is
    /// an input: the input's value (the path) is in the cache key, the
    /// file's content is not, and a step that opens the file itself is
    /// served stale when the file changes.
    ///
    /// ```
    /// use flowyml::{Pipeline, step, step::StepContext};
    ///
    /// #[step(outputs = ["lines"])]
    /// fn count_lines(path: &String, ctx: &mut StepContext) -> Result<usize, flowyml::BoxError> {
    ///     Ok(ctx.read_to_string(path)?.lines().count())
    /// }
    ///
    /// let dir = tempfile::tempdir()?;
    /// let file = dir.path().join("data.txt");
    /// std::fs::write(&file, "a\nb\n")?;
    /// let mut p = Pipeline::new("lines");
    /// p.input("path", file.display().to_string()).add_step(count_lines);
    /// assert_eq!(*p.run()?.get::<usize>("lines")?, 2);
    /// std::fs::write(&file, "a\nb\nc\n")?;
    /// assert_eq!(*p.run()?.get::<usize>("lines")?, 3); // not served stale
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// If the file cannot be read, naming it.
    pub fn read_file(&mut self, path: impl AsRef<Path>) -> Result<Vec<u8>, BoxError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        self.gathered.said().reads.push(FileRead {
            path: path.to_owned(),
            hash: Fingerprint::of_bytes(&bytes),
        });
        Ok(bytes)
    }

    /// [`read_file`](Self::read_file) as text.
    ///
    /// # Errors
    /// If the file cannot be read or is not UTF-8, naming it.
    pub fn read_to_string(&mut self, path: impl AsRef<Path>) -> Result<String, BoxError> {
        let path = path.as_ref();
        String::from_utf8(self.read_file(path)?)
            .map_err(|e| format!("`{}` is not UTF-8 text: {e}", path.display()).into())
    }

    /// Records a file the step reads by other means (a reader that takes a
    /// path, such as polars' CSV reader), as [`read_file`](Self::read_file)
    /// does: hashed now, so call it before reading the file. A file that
    /// changes between the two is read new and recorded old, and so reruns
    /// the step next time: never stale.
    ///
    /// # Errors
    /// If the file cannot be read, naming it.
    pub fn watch(&mut self, path: impl AsRef<Path>) -> Result<(), BoxError> {
        let path = path.as_ref();
        let hash = hash_file(path)?;
        self.gathered.said().reads.push(FileRead {
            path: path.to_owned(),
            hash,
        });
        Ok(())
    }

    /// Adds a note to this step's record (e.g. that it ran its CPU
    /// fallback).
    pub fn note(&mut self, note: impl Into<String>) {
        self.gathered.said().notes.push(note.into());
    }

    /// Whether the run was cancelled (Ctrl-C, a
    /// [`Canceller`](crate::pipeline::Canceller)), stopped (its time limit,
    /// a failure elsewhere) or this step ran past its own time limit: a
    /// long step polls it and ends early. (A thread cannot be stopped from
    /// outside safely; a step that does not poll runs to its end.)
    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed) || self.stop.load(Ordering::Relaxed)
    }

    /// `Err` once [`is_cancelled`](Self::is_cancelled): `ctx.check_cancelled()?`
    /// in a long step's loop.
    ///
    /// # Errors
    /// "cancelled", once the run was cancelled or stopped.
    pub fn check_cancelled(&self) -> Result<(), BoxError> {
        if self.is_cancelled() {
            Err(format!("step `{}` was cancelled", self.spec().name).into())
        } else {
            Ok(())
        }
    }

    /// This step's spec.
    pub fn spec(&self) -> &'a StepSpec {
        self.specs.spec(self.index)
    }
}

impl std::fmt::Debug for StepContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepContext")
            .field("step", &self.spec().name)
            .finish_non_exhaustive()
    }
}
