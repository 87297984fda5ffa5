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

/// Every registered pipeline, sorted by name (then module).
pub fn pipelines() -> Vec<&'static RegisteredPipeline> {
    let mut pipelines: Vec<_> = inventory::iter::<RegisteredPipeline>.into_iter().collect();
    pipelines.sort_by_key(|p| (p.name, p.module_path));
    pipelines
}

/// Checks that no two registered pipelines share a name: what the CLI
/// does when it starts. (Registration happens at link time, across
/// crates, so this is the first place every pipeline is seen together.)
///
/// # Errors
/// [`Error::DuplicatePipeline`] for the first shared name, with every
/// module that registers it.
pub fn check() -> Result<()> {
    first_duplicate(&pipelines()).map_or(Ok(()), Err)
}

/// The first name shared in `sorted` (sorted by name), as an error.
fn first_duplicate(sorted: &[&RegisteredPipeline]) -> Option<Error> {
    sorted
        .chunk_by(|a, b| a.name == b.name)
        .find(|same| same.len() > 1)
        .map(|same| Error::DuplicatePipeline {
            name: same[0].name.to_owned(),
            modules: same.iter().map(|p| p.module_path.to_owned()).collect(),
        })
}

/// The registered pipeline `name`, built.
///
/// # Errors
/// [`Error::UnknownPipeline`], with the closest name if one is close;
/// [`Error::DuplicatePipeline`] if more than one pipeline has the name.
pub fn pipeline(name: &str) -> Result<Pipeline> {
    let all = pipelines();
    let named: Vec<_> = all.iter().copied().filter(|p| p.name == name).collect();
    match named.as_slice() {
        [one] => Ok((one.build)()),
        [] => Err(Error::UnknownPipeline {
            name: name.to_owned(),
            hint: flowyml_suggest::did_you_mean(name, all.iter().map(|p| p.name)),
        }),
        several => Err(first_duplicate(several).expect("several share the name")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registered(name: &'static str, module_path: &'static str) -> RegisteredPipeline {
        RegisteredPipeline {
            name,
            module_path,
            build: || Pipeline::new("unused"),
        }
    }

    #[test]
    fn a_shared_name_is_reported_with_every_module() {
        let (a, b, c) = (
            registered("etl", "app::nightly"),
            registered("etl", "app::hourly"),
            registered("train", "app::ml"),
        );
        let mut sorted = vec![&a, &b, &c];
        sorted.sort_by_key(|p| (p.name, p.module_path));
        let err = first_duplicate(&sorted).expect("`etl` is shared");
        assert_eq!(
            err.to_string(),
            "pipeline name `etl` is registered 2 times, by `app::hourly` and `app::nightly`: give all but one another `#[pipeline(name = \"..\")]`"
        );
        assert!(first_duplicate(&[&a, &c]).is_none());
    }
}
