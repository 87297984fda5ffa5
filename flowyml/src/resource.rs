//! Per-run resources shared by the steps that use them, such as an opened
//! GPU.
//!
//! A step declares the resources it uses by name
//! ([`StepSpec::resources`](crate::step::StepSpec::resources);
//! `#[step(gpu)]` declares [`GPU`]). A [`ResourceProvider`], registered
//! through `inventory` (the `gpu` feature registers the GPU's), opens its
//! resource once per run when some step declares it, unless the pipeline
//! disabled it ([`Pipeline::disable_resource`](crate::Pipeline::disable_resource)).
//! The pipeline knows resources only by name: nothing in it is specific to
//! GPUs.
//!
//! Around each step that declares it, the run [enters](RunResource::enter)
//! the resource, which may wait (to bound how many steps use it at once)
//! and returns a [`ResourceGuard`]: dropping the guard gives the resource
//! back, so it is given back however the step ends, panics included.
//!
//! This module sits below [`step`](mod@crate::step): a step's context hands
//! out the run's [`Resources`], and nothing here knows what a step is.

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::Arc;

/// The name under which the GPU is a resource (`#[step(gpu)]`,
/// `--no-gpu`).
pub const GPU: &str = "gpu";

/// Typed per-run resources shared by steps (such as an opened GPU), and
/// why an absent one is absent.
#[derive(Default)]
pub struct Resources {
    entries: Vec<(TypeId, Arc<dyn Any + Send + Sync>)>,
    missing: Vec<(TypeId, String)>,
}

impl Resources {
    /// Adds (or replaces) the resource of type `R`.
    pub fn insert<R: Any + Send + Sync>(&mut self, resource: Arc<R>) {
        self.entries.retain(|(t, _)| *t != TypeId::of::<R>());
        self.entries.push((TypeId::of::<R>(), resource));
    }

    /// Records that the resource of type `R` is unavailable, and why: a
    /// step asking for it gets this reason.
    pub fn insert_missing<R: Any>(&mut self, reason: impl Into<String>) {
        self.missing.push((TypeId::of::<R>(), reason.into()));
    }

    /// The resource of type `R`.
    pub fn get<R: Any + Send + Sync>(&self) -> Option<&R> {
        self.entries
            .iter()
            .find(|(t, _)| *t == TypeId::of::<R>())
            .and_then(|(_, r)| r.downcast_ref())
    }

    /// Why the resource of type `R` is absent, if a provider said.
    pub fn missing_reason<R: Any>(&self) -> Option<&str> {
        self.missing
            .iter()
            .find(|(t, _)| *t == TypeId::of::<R>())
            .map(|(_, r)| r.as_str())
    }
}

impl fmt::Debug for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Resources({} entries)", self.entries.len())
    }
}

/// Opens one kind of resource for the runs whose steps declare it.
/// Register one with `inventory::submit!`.
pub struct ResourceProvider {
    /// The resource's name, as steps declare it and as
    /// [`Pipeline::disable_resource`](crate::Pipeline::disable_resource) takes it.
    pub name: &'static str,
    /// Opens the resource for one run and installs it in `resources`, or,
    /// when it is `disabled` or cannot be opened, records why with
    /// [`Resources::insert_missing`] and returns `None`.
    pub open: fn(resources: &mut Resources, disabled: bool) -> Option<Arc<dyn RunResource>>,
}

impl fmt::Debug for ResourceProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResourceProvider")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

inventory::collect!(ResourceProvider);

/// A resource opened for one run, which bounds and observes the steps
/// using it.
pub trait RunResource: Send + Sync {
    /// Waits until step `step` may use the resource (bounding concurrent
    /// use) and returns the guard that holds it: the resource is given
    /// back when the guard drops.
    fn enter(&self, step: &str) -> Box<dyn ResourceGuard + '_>;
}

/// A step's hold on a resource; dropping it gives the resource back.
pub trait ResourceGuard {
    /// Notes for the step's record, taken when the step has returned (not
    /// when it panicked): what device it ran on, what memory it used.
    fn notes(&mut self) -> Vec<String> {
        Vec::new()
    }
}
