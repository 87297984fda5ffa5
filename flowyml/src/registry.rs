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

/// Registers a pipeline built by a function, so that the CLI finds it by
/// name as it finds a `#[pipeline]` module: for pipelines that hold steps
/// a module cannot list, such as the library's own
/// (`dataframe::optimize_step`).
///
/// ```
/// use flowyml::{Pipeline, register_pipeline, step::FnStep};
///
/// fn doubled() -> Pipeline {
///     let mut p = Pipeline::new("doubled");
///     p.add_step(FnStep::builder("double").stored_input::<u32>("x").stored_output::<u32>("y").build(|ctx| {
///         let x = *ctx.input::<u32>(0)?;
///         ctx.set_output(0, 2 * x);
///         Ok(())
///     }));
///     p
/// }
/// register_pipeline!("doubled", doubled);
///
/// let mut p = flowyml::registry::pipeline("doubled")?;
/// p.input_json("x", "21")?;
/// assert_eq!(*p.run()?.get::<u32>("y")?, 42);
/// # Ok::<(), flowyml::Error>(())
/// ```
#[macro_export]
macro_rules! register_pipeline {
    ($name:literal, $build:path) => {
        $crate::__private::inventory::submit! {
            $crate::__private::RegisteredPipeline {
                name: $name,
                module_path: ::core::module_path!(),
                build: $build,
            }
        }
    };
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
