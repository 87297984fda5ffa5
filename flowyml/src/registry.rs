//! Every step and `#[pipeline]` of the program, registered through
//! `inventory` when they are defined, so tools (the CLI) find them by name.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::OnceLock;

use crate::pipeline::Pipeline;
use crate::step::{Step, StepSpec};

/// A step registered by `#[step]`.
pub struct RegisteredStep {
    /// Its spec.
    pub spec: &'static StepSpec,
    /// The step itself.
    pub step: &'static dyn Step,
    /// The `TypeId` of the annotated function's item type, by which
    /// `add_step(function)` finds the step.
    pub function: fn() -> TypeId,
}

impl std::fmt::Debug for RegisteredStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RegisteredStep")
            .field(&self.spec.name)
            .finish()
    }
}

/// A pipeline registered by `#[pipeline]`.
#[derive(Debug)]
pub struct RegisteredPipeline {
    /// Its name.
    pub name: &'static str,
    /// The module that declares it.
    pub module_path: &'static str,
    /// Builds it.
    pub build: fn() -> Pipeline,
}

inventory::collect!(RegisteredStep);
inventory::collect!(RegisteredPipeline);

/// Every registered step, sorted by module path and name.
pub fn steps() -> Vec<&'static StepSpec> {
    let mut steps: Vec<_> = inventory::iter::<RegisteredStep>
        .into_iter()
        .map(|s| s.spec)
        .collect();
    steps.sort_by(|a, b| (&a.module_path, &a.name).cmp(&(&b.module_path, &b.name)));
    steps
}

/// Every registered pipeline, sorted by name.
pub fn pipelines() -> Vec<&'static RegisteredPipeline> {
    let mut pipelines: Vec<_> = inventory::iter::<RegisteredPipeline>.into_iter().collect();
    pipelines.sort_by_key(|p| p.name);
    pipelines
}

/// The registered pipeline `name`, built.
///
/// # Errors
/// [`Error::UnknownPipeline`](crate::Error::UnknownPipeline), with the
/// closest name if one is close.
pub fn pipeline(name: &str) -> crate::Result<Pipeline> {
    pipelines()
        .into_iter()
        .find(|p| p.name == name)
        .map(|p| (p.build)())
        .ok_or_else(|| crate::Error::UnknownPipeline {
            name: name.to_owned(),
            hint: flowyml_suggest::did_you_mean(name, pipelines().iter().map(|p| p.name)),
        })
}

/// The step `#[step]` made of the function whose item type is `F`.
pub(crate) fn step_of<F: 'static>() -> Option<&'static dyn Step> {
    static BY_FUNCTION: OnceLock<HashMap<TypeId, &'static dyn Step>> = OnceLock::new();
    BY_FUNCTION
        .get_or_init(|| {
            inventory::iter::<RegisteredStep>
                .into_iter()
                .map(|s| ((s.function)(), s.step))
                .collect()
        })
        .get(&TypeId::of::<F>())
        .copied()
}
