//! Every step and `#[pipeline]` of the program, registered through
//! `inventory` when they are defined, so tools (the CLI) find them by name.

use crate::pipeline::Pipeline;
use crate::step::StepSpec;

/// A step registered by `#[step]`.
#[derive(Debug)]
pub struct RegisteredStep(pub &'static StepSpec);

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
        .map(|s| s.0)
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
            hint: crate::suggest::did_you_mean(name, pipelines().iter().map(|p| p.name)),
        })
}
