//! Procedural macros of [flowyml](https://docs.rs/flowyml). Use them through
//! the `flowyml` crate, which re-exports them: the generated code names only
//! `::flowyml::__private` paths.
//!
//! Each macro is split like serde_derive: *parse* (attributes into a model),
//! *check* (validation, every error collected and reported together, spanned
//! at the user's token) and *expand* (code generation). On error the
//! original item is emitted beside the errors, so the rest of the user's
//! code still type-checks and only the real mistakes are reported.
#![warn(missing_docs)]

use proc_macro::TokenStream;

mod attr;
mod ctxt;
mod lazy;
mod pipeline;
mod step;
mod types;

/// Marks an `impl` block whose `#[lazy_property]` methods are cached per
/// instance. The type stores them in one field, `lazy: LazyCells<Self>`
/// (another field name is chosen with `#[lazy_properties(field = name)]`).
///
/// See `flowyml::LazyCells` for an example.
#[proc_macro_attribute]
pub fn lazy_properties(args: TokenStream, item: TokenStream) -> TokenStream {
    // The file that holds the `impl` (and, usually, the type), read only to
    // say which field holds the cells when the expected one is missing.
    let file = proc_macro::Span::call_site().local_file();
    lazy::lazy_properties(args.into(), item.into(), file.as_deref()).into()
}

/// Turns `fn name(&self) -> T` into `fn name(&self) -> &T`, computed on
/// first access and cached in the instance, thread-safely. Only valid on a
/// method of an `impl` block marked `#[lazy_properties]`.
#[proc_macro_attribute]
pub fn lazy_property(args: TokenStream, item: TokenStream) -> TokenStream {
    lazy::lazy_property_alone(args.into(), item.into()).into()
}

/// Makes a plain function a pipeline step; the function stays callable as
/// written.
///
/// ```
/// use flowyml::step;
///
/// #[step(outputs = ["clean"])]
/// fn clean(raw: &Vec<f64>) -> Vec<f64> {
///     raw.iter().copied().filter(|v| v.is_finite()).collect()
/// }
/// assert_eq!(clean(&vec![1.0, f64::NAN]), vec![1.0]);
/// ```
///
/// The arguments, `#[step(key = value, ..)]`, each given at most once:
///
/// | key | meaning |
/// | --- | --- |
/// | `outputs = ["a", ..]` | the names of the artifacts the step returns: one name, or one per element of a returned tuple. Required when the step returns a value; a step returning `()` has none. |
/// | `inputs = ["a", ..]` | the names of the artifacts the parameters receive, in order (by default each parameter's own name) |
/// | `name = "step"` | the step's name (by default the function's) |
/// | `gpu` | the step uses the run's GPU, received as a `&Gpu` parameter (feature `gpu`) |
/// | `fallback = path` | with `gpu`: the CPU function, same parameters without the `&Gpu`, run when the run has no GPU (the record notes it) |
/// | `watch = ["file", ..]` | files the step reads: a change of their content reruns it |
/// | `retries = n` | retry the step up to `n` times after it fails (default: the pipeline's, `Pipeline::retries`) |
/// | `backoff = "200ms"` | the wait before the first retry, doubled (with jitter) for each next one |
/// | `timeout = "30s"` | the longest one attempt may take: past it the step is recorded as timed out, its dependents are skipped, and its thread is abandoned |
/// | `crate = "path"` | where `flowyml` is, for crates that re-export it |
///
/// A parameter is `&T` (borrowed from the shared artifact) or an owned `T:
/// Clone` (a clone for this step); `&Gpu` (with `gpu`) receives the run's
/// GPU, and `&StepContext` or `&mut StepContext` the step's own context
/// (`is_cancelled`, `note`). A `Result<_, E>` return fails the step with
/// `E` (kept as the error's source where `E` is an error type, by its
/// message otherwise).
///
/// A step that returns a value must name it:
///
/// ```compile_fail
/// #[flowyml::step]
/// fn load() -> Vec<u32> { vec![1, 2] } // error: add `outputs = ["load"]`
/// ```
#[proc_macro_attribute]
pub fn step(args: TokenStream, item: TokenStream) -> TokenStream {
    step::step(args.into(), item.into()).into()
}

/// Declares a named pipeline over the `#[step]` functions of an inline
/// module, checked at compile time and registered for the CLI:
/// `#[pipeline(name = "training")] mod training { .. }`. It adds
/// `pipeline()` and `NAME` to the module.
#[proc_macro_attribute]
pub fn pipeline(args: TokenStream, item: TokenStream) -> TokenStream {
    pipeline::pipeline(args.into(), item.into()).into()
}
