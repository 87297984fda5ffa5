//! What `#[step]` knows about a step once its attribute and signature are
//! parsed and checked.

use proc_macro2::Span;

/// A checked step.
pub struct StepModel {
    /// The user's function, unchanged.
    pub func: syn::ItemFn,
    /// The step's name (`name = ".."` or the function's).
    pub name: String,
    /// Artifact parameters, in parameter order.
    pub inputs: Vec<Input>,
    /// Outputs, in the order of the returned tuple.
    pub outputs: Vec<Output>,
    /// Whether the function returns `Result<_, E>`.
    pub fallible: bool,
    /// Index of the `&Gpu` context parameter, if any.
    pub gpu_param: Option<usize>,
    /// Whether the step asked for a GPU.
    pub gpu: bool,
    /// The CPU version of a GPU step: the same parameters without `&Gpu`.
    pub fallback: Option<syn::Path>,
    /// Files the step reads, fingerprinted for incremental reruns.
    pub watch: Vec<syn::LitStr>,
    /// A hash of the function's tokens.
    pub fingerprint: [u8; 32],
}

/// An artifact the step consumes.
pub struct Input {
    /// Artifact name.
    pub name: String,
    /// Where the name was written (the `inputs` literal or the parameter).
    pub span: Span,
    /// Position among the function's parameters.
    pub param: usize,
    /// The artifact's type (without the `&`).
    pub ty: syn::Type,
    /// `&T` (borrowed from the shared artifact) rather than an owned clone.
    pub borrowed: bool,
}

/// An artifact the step produces.
pub struct Output {
    /// Artifact name.
    pub name: String,
    /// Where the name was written.
    pub span: Span,
    /// The artifact's type.
    pub ty: syn::Type,
}
