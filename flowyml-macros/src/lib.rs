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

mod errors;
mod lazy;
mod pipeline;
mod step;

/// Marks an `impl` block whose `#[lazy_property]` methods are cached per
/// instance. The type stores them in one field, `lazy: LazyCells<Self>`
/// (another field name is chosen with `#[lazy_properties(field = name)]`).
///
/// See `flowyml::LazyCells` for an example.
#[proc_macro_attribute]
pub fn lazy_properties(args: TokenStream, item: TokenStream) -> TokenStream {
    lazy::lazy_properties(args.into(), item.into()).into()
}

/// Turns `fn name(&self) -> T` into `fn name(&self) -> &T`, computed on
/// first access and cached in the instance, thread-safely. Only valid on a
/// method of an `impl` block marked `#[lazy_properties]`.
#[proc_macro_attribute]
pub fn lazy_property(args: TokenStream, item: TokenStream) -> TokenStream {
    lazy::lazy_property_alone(args.into(), item.into()).into()
}

/// Makes a plain function a pipeline step.
///
/// `#[step(inputs = ["raw"], outputs = ["clean"])]`, with optional
/// `name = ".."`, `gpu` and `watch = ["file"]`. Without `inputs`, the
/// parameter names are the input artifacts; without `outputs`, the single
/// output is named after the function. A parameter is `&T` (borrowed from
/// the shared artifact) or an owned `T: Clone`; several outputs are returned
/// as a tuple; a `Result<_, E: Display>` return fails the step with `E`'s
/// message. The function stays callable as written.
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
