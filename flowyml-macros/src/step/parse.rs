//! The attribute and the signature of a `#[step]` function, read into a
//! [`Parsed`] without judging them (that is [`check`](super::check)'s job),
//! apart from the attribute's syntax.

use proc_macro2::{Span, TokenStream};
use syn::spanned::Spanned;
use syn::{FnArg, Pat, ReturnType, Type};

use crate::attr::{Args, Kind};
use crate::ctxt::Ctxt;

/// The keys of `#[step(..)]`.
pub const KEYS: &[(&str, Kind)] = &[
    ("inputs", Kind::StrList),
    ("outputs", Kind::StrList),
    ("name", Kind::Str),
    ("gpu", Kind::Flag),
    ("fallback", Kind::Path),
    ("watch", Kind::StrList),
    ("retries", Kind::Int),
    ("backoff", Kind::Str),
    ("timeout", Kind::Str),
    ("crate", Kind::Path),
];

/// A `#[step]` function as written.
pub struct Parsed {
    /// The function, unchanged.
    pub func: syn::ItemFn,
    /// The attribute's arguments.
    pub args: Args,
    /// Each parameter.
    pub params: Vec<Param>,
    /// The return type (`()` when none is written) and where it is.
    pub ret: Type,
    pub ret_span: Span,
}

/// One parameter.
pub struct Param {
    /// Position among the function's parameters.
    pub index: usize,
    pub kind: ParamKind,
}

/// What a parameter is (built once per parameter, so the size of the
/// variants does not matter).
#[allow(clippy::large_enum_variant)]
pub enum ParamKind {
    /// `self` in any form.
    Receiver(syn::Receiver),
    /// The `&Gpu` context.
    Gpu(Type),
    /// The step's own context, `&StepContext` or `&mut StepContext`
    /// (cancellation, notes).
    Context { ty: Type, mutable: bool },
    /// An artifact: `name: &T` (borrowed) or `name: T` (an owned clone).
    Artifact {
        ident: syn::Ident,
        /// The artifact's type, without the `&`.
        ty: Type,
        borrowed: bool,
        /// The parameter's type as written.
        written: Type,
    },
    /// A pattern that is not a plain name (`(a, b): (u8, u8)`).
    Pattern(Pat),
}

/// The last path segment's name, for `&Gpu` and `Result` detection.
pub fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last(),
        Type::Group(g) => last_segment(&g.elem),
        Type::Paren(p) => last_segment(&p.elem),
        _ => None,
    }
}

fn is_gpu_context(ty: &Type) -> bool {
    matches!(ty, Type::Reference(r) if last_segment(&r.elem).is_some_and(|s| s.ident == "Gpu"))
}

/// `Some(mutable)` for `&StepContext` / `&mut StepContext`.
fn step_context(ty: &Type) -> Option<bool> {
    match ty {
        Type::Reference(r) if last_segment(&r.elem).is_some_and(|s| s.ident == "StepContext") => {
            Some(r.mutability.is_some())
        }
        _ => None,
    }
}

pub fn parse(args: TokenStream, func: &syn::ItemFn, cx: &Ctxt) -> Parsed {
    let args = Args::parse(args, "#[step]", KEYS, cx);
    let params = func
        .sig
        .inputs
        .iter()
        .enumerate()
        .map(|(index, arg)| {
            let kind = match arg {
                FnArg::Receiver(r) => ParamKind::Receiver(r.clone()),
                FnArg::Typed(pt) if is_gpu_context(&pt.ty) => ParamKind::Gpu((*pt.ty).clone()),
                FnArg::Typed(pt) if step_context(&pt.ty).is_some() => ParamKind::Context {
                    ty: (*pt.ty).clone(),
                    mutable: step_context(&pt.ty) == Some(true),
                },
                FnArg::Typed(pt) => match &*pt.pat {
                    Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => {
                        let (ty, borrowed) = match &*pt.ty {
                            Type::Reference(r) => ((*r.elem).clone(), true),
                            other => (other.clone(), false),
                        };
                        ParamKind::Artifact {
                            ident: p.ident.clone(),
                            ty,
                            borrowed,
                            written: (*pt.ty).clone(),
                        }
                    }
                    other => ParamKind::Pattern(other.clone()),
                },
            };
            Param { index, kind }
        })
        .collect();
    let (ret, ret_span) = match &func.sig.output {
        ReturnType::Default => (syn::parse_quote!(()), func.sig.paren_token.span.close()),
        ReturnType::Type(_, ty) => ((**ty).clone(), ty.span()),
    };
    Parsed {
        func: func.clone(),
        args,
        params,
        ret,
        ret_span,
    }
}

impl Parsed {
    /// The artifact parameters: (position, name, type, borrowed).
    pub fn artifacts(&self) -> impl Iterator<Item = (usize, &syn::Ident, &Type, bool)> {
        self.params.iter().filter_map(|p| match &p.kind {
            ParamKind::Artifact {
                ident,
                ty,
                borrowed,
                ..
            } => Some((p.index, ident, ty, *borrowed)),
            _ => None,
        })
    }

    /// The position of the `&Gpu` parameter, if any.
    pub fn gpu_param(&self) -> Option<usize> {
        self.params
            .iter()
            .find(|p| matches!(p.kind, ParamKind::Gpu(_)))
            .map(|p| p.index)
    }

    /// The position of the `StepContext` parameter, and whether it is
    /// `&mut`.
    pub fn context_param(&self) -> Option<(usize, bool)> {
        self.params.iter().find_map(|p| match p.kind {
            ParamKind::Context { mutable, .. } => Some((p.index, mutable)),
            _ => None,
        })
    }

    /// The output names listed in the attribute.
    pub fn output_names(&self) -> &[syn::LitStr] {
        self.args.str_list("outputs").map_or(&[], |(_, l)| l)
    }

    /// `T` for a return type *spelt* `..Result<T, ..>` (`Result`,
    /// `io::Result`, `PolarsResult`), else the return type: what the step
    /// outputs as far as the tokens tell. The expansion decides by type
    /// (`type Fallible<T> = Result<T, String>` is a `Result` too); the checks
    /// use this only where the syntax alone is conclusive, a tuple or a
    /// reference written out.
    pub fn written_value_type(&self) -> &Type {
        let ok = last_segment(&self.ret)
            .filter(|seg| seg.ident.to_string().ends_with("Result"))
            .and_then(|seg| match &seg.arguments {
                syn::PathArguments::AngleBracketed(args) => args.args.first(),
                _ => None,
            });
        match ok {
            Some(syn::GenericArgument::Type(t)) => t,
            _ => &self.ret,
        }
    }
}
