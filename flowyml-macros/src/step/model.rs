//! What `#[step]` knows about a step once its attribute and signature
//! passed [`check`](super::check).

use proc_macro2::Span;
use quote::ToTokens;
use syn::{LitStr, Type};

use super::parse::Parsed;

/// A checked step.
pub struct StepModel {
    /// The user's function, unchanged.
    pub func: syn::ItemFn,
    /// The path of the `flowyml` crate (`crate = ".."`, else `::flowyml`).
    pub krate: syn::Path,
    /// The step's name (`name = ".."` or the function's).
    pub name: String,
    /// Artifact parameters, in parameter order.
    pub inputs: Vec<Input>,
    /// Outputs, in the order of the returned tuple.
    pub outputs: Vec<Output>,
    /// The return type as written (`()` when none is), and where it is:
    /// whether it is a `Result` and what it outputs is decided by its type
    /// in the expansion, not by its spelling here.
    pub ret: Type,
    pub ret_span: Span,
    /// Index of the `&Gpu` context parameter, if any.
    pub gpu_param: Option<usize>,
    /// Index of the `StepContext` parameter, and whether it is `&mut`.
    pub context_param: Option<(usize, bool)>,
    /// Whether the step asked for a GPU.
    pub gpu: bool,
    /// The CPU version of a GPU step: the same parameters without `&Gpu`.
    pub fallback: Option<syn::Path>,
    /// Files the step reads, fingerprinted for incremental reruns.
    pub watch: Vec<LitStr>,
    /// Retries after a failure (`retries = n`).
    pub retries: Option<u32>,
    /// The first retry's wait and each attempt's limit, in nanoseconds.
    pub backoff_ns: Option<u64>,
    pub timeout_ns: Option<u64>,
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
    pub ty: Type,
    /// `&T` (borrowed from the shared artifact) rather than an owned clone.
    pub borrowed: bool,
}

/// An artifact the step produces (its type is known only to the
/// compiler: see [`StepModel::ret`]).
pub struct Output {
    /// Artifact name.
    pub name: String,
    /// Where the name was written.
    pub span: Span,
}

impl From<Parsed> for StepModel {
    fn from(step: Parsed) -> Self {
        let named = step.args.str_list("inputs").map(|(_, names)| names);
        let inputs = step
            .artifacts()
            .enumerate()
            .map(|(k, (param, ident, ty, borrowed))| {
                let (name, span) = match named {
                    Some(names) => (names[k].value(), names[k].span()),
                    None => (ident.to_string(), ident.span()),
                };
                Input {
                    name,
                    span,
                    param,
                    ty: ty.clone(),
                    borrowed,
                }
            })
            .collect();
        let outputs = step
            .output_names()
            .iter()
            .map(|lit| Output {
                name: lit.value(),
                span: lit.span(),
            })
            .collect();
        StepModel {
            fingerprint: *blake3::hash(step.func.to_token_stream().to_string().as_bytes())
                .as_bytes(),
            krate: step
                .args
                .path("crate")
                .cloned()
                .unwrap_or_else(|| syn::parse_quote!(::flowyml)),
            name: step
                .args
                .str("name")
                .map_or_else(|| step.func.sig.ident.to_string(), LitStr::value),
            inputs,
            outputs,
            ret: step.ret.clone(),
            ret_span: step.ret_span,
            gpu_param: step.gpu_param(),
            context_param: step.context_param(),
            gpu: step.args.flag("gpu"),
            fallback: step.args.path("fallback").cloned(),
            watch: step
                .args
                .str_list("watch")
                .map_or_else(Vec::new, |(_, l)| l.to_vec()),
            retries: step.args.int("retries").and_then(|n| n.base10_parse().ok()),
            backoff_ns: step
                .args
                .str("backoff")
                .and_then(|d| crate::attr::duration_ns(&d.value())),
            timeout_ns: step
                .args
                .str("timeout")
                .and_then(|d| crate::attr::duration_ns(&d.value())),
            func: step.func,
        }
    }
}
