//! Every `#[pipeline]` of the program, registered through `inventory` when
//! it is defined, so tools (the CLI) find pipelines by name. (Steps are
//! registered beside [`Step`](crate::step::Step), in [`step::registered`](crate::step::registered).)

use crate::error::{Error, Result};
use crate::pipeline::Pipeline;

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

inventory::collect!(RegisteredPipeline);

/// Every registered pipeline, sorted by name.
pub fn pipelines() -> Vec<&'static RegisteredPipeline> {
    let mut pipelines: Vec<_> = inventory::iter::<RegisteredPipeline>.into_iter().collect();
    pipelines.sort_by_key(|p| p.name);
    pipelines
}

/// The registered pipeline `name`, built.
///
/// # Errors
/// [`Error::UnknownPipeline`], with the closest name if one is close.
pub fn pipeline(name: &str) -> Result<Pipeline> {
    pipelines()
        .into_iter()
        .find(|p| p.name == name)
        .map(|p| (p.build)())
        .ok_or_else(|| Error::UnknownPipeline {
            name: name.to_owned(),
            hint: flowyml_suggest::did_you_mean(name, pipelines().iter().map(|p| p.name)),
        })
}
