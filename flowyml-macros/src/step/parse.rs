//! Attribute and signature into a [`StepModel`], with every problem reported
//! at its token.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, LitStr, Pat, PathArguments, ReturnType, Token, Type};

use super::model::{Input, Output, StepModel};
use crate::errors::Errors;

const KEYS: &str = "`inputs`, `outputs`, `name`, `gpu`, `fallback` and `watch`";

#[derive(Default)]
struct Args {
    inputs: Option<(Span, Vec<LitStr>)>,
    outputs: Option<Vec<LitStr>>,
    name: Option<LitStr>,
    gpu: bool,
    fallback: Option<syn::Path>,
    watch: Vec<LitStr>,
}

fn string_list(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<(Span, Vec<LitStr>)> {
    let value = meta.value()?;
    let content;
    let brackets = syn::bracketed!(content in value);
    let list = Punctuated::<LitStr, Token![,]>::parse_terminated(&content)?;
    Ok((brackets.span.join(), list.into_iter().collect()))
}

fn parse_args(args: TokenStream, errors: &mut Errors) -> Args {
    let mut parsed = Args::default();
    let parser = syn::meta::parser(|meta| {
        let key = meta
            .path
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_default();
        match key.as_str() {
            "inputs" => parsed.inputs = Some(string_list(&meta)?),
            "outputs" => parsed.outputs = Some(string_list(&meta)?.1),
            "name" => parsed.name = Some(meta.value()?.parse()?),
            "watch" => parsed.watch = string_list(&meta)?.1,
            "gpu" => parsed.gpu = true,
            "fallback" => parsed.fallback = Some(meta.value()?.parse()?),
            _ => {
                return Err(meta.error(format!(
                    "unknown #[step] argument `{}`: the arguments are {KEYS}",
                    meta.path.to_token_stream()
                )));
            }
        }
        Ok(())
    });
    if let Err(e) = parser.parse2(args) {
        errors.add(e);
    }
    parsed
}

/// The last path segment's name and generic arguments, for `Result<T, E>`
/// and `&Gpu` detection.
fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
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

/// `Result<T, ..>` → `Some(T)`. Aliases count when their name ends in
/// `Result` (`io::Result<T>`, `PolarsResult<T>`, `anyhow::Result<T>`): a
/// macro sees names, not what they resolve to.
fn result_ok_type(ty: &Type) -> Option<Type> {
    let seg = last_segment(ty)?;
    if !seg.ident.to_string().ends_with("Result") {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &seg.arguments else {
        return None;
    };
    args.args.iter().find_map(|a| match a {
        GenericArgument::Type(t) => Some(t.clone()),
        _ => None,
    })
}

pub fn parse_step(args: TokenStream, func: &syn::ItemFn) -> syn::Result<StepModel> {
    let mut errors = Errors::default();
    let args = parse_args(args, &mut errors);
    let sig = &func.sig;

    if let Some(a) = &sig.asyncness {
        errors.push(a, "a step cannot be `async`: flowyml runs steps on its thread pool; block on the future inside the step if you must");
    }
    if !sig.generics.params.is_empty() {
        errors.push(&sig.generics, "a step cannot be generic: the pipeline needs each artifact's concrete type; write one step per type");
    }
    if let Some(u) = &sig.unsafety {
        errors.push(
            u,
            "a step cannot be `unsafe fn`: wrap the unsafe code in a safe function",
        );
    }
    if let Some(v) = &sig.variadic {
        errors.push(v, "a step cannot be variadic");
    }

    // Parameters: artifacts, and at most one `&Gpu` context.
    let mut params = Vec::new();
    let mut gpu_param = None;
    for (i, arg) in sig.inputs.iter().enumerate() {
        let FnArg::Typed(pt) = arg else {
            errors.push(arg, "a step is a free function: remove `self`");
            continue;
        };
        if is_gpu_context(&pt.ty) {
            if !args.gpu {
                errors.push(&pt.ty, "this step takes a `&Gpu` context: add `gpu` to its attribute, `#[step(..., gpu)]`");
            }
            if gpu_param.replace(i).is_some() {
                errors.push(&pt.ty, "a step takes at most one `&Gpu` context");
            }
            continue;
        }
        let ident = match &*pt.pat {
            Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => p.ident.clone(),
            other => {
                errors.push(other, "a step parameter must be a plain name: its name is the artifact it receives (or use `inputs = [...]`)");
                continue;
            }
        };
        let (ty, borrowed) = match &*pt.ty {
            Type::Reference(r) if r.mutability.is_some() => {
                errors.push(r, "a step cannot mutate a shared artifact: take `&T`, or an owned `T` (cloned for this step)");
                continue;
            }
            Type::Reference(r) => ((*r.elem).clone(), true),
            Type::ImplTrait(t) => {
                errors.push(
                    t,
                    "a step parameter needs a concrete type, not `impl Trait`",
                );
                continue;
            }
            other => (other.clone(), false),
        };
        params.push((i, ident, ty, borrowed));
    }

    let mut inputs = Vec::new();
    match &args.inputs {
        Some((span, names)) if names.len() != params.len() => {
            errors.add(syn::Error::new(
                *span,
                format!(
                    "`inputs` names {} artifact(s) but `{}` takes {} artifact parameter(s): name one artifact per parameter, in order",
                    names.len(),
                    sig.ident,
                    params.len()
                ),
            ));
        }
        Some((_, names)) => {
            for (lit, (param, _, ty, borrowed)) in names.iter().zip(&params) {
                inputs.push(Input {
                    name: lit.value(),
                    span: lit.span(),
                    param: *param,
                    ty: ty.clone(),
                    borrowed: *borrowed,
                });
            }
        }
        None => {
            for (param, ident, ty, borrowed) in &params {
                inputs.push(Input {
                    name: ident.to_string(),
                    span: ident.span(),
                    param: *param,
                    ty: ty.clone(),
                    borrowed: *borrowed,
                });
            }
        }
    }

    // Return type: `T`, `(A, B, ..)`, or either inside `Result<_, E>`.
    let (ret, ret_span) = match &sig.output {
        ReturnType::Default => (syn::parse_quote!(()), sig.paren_token.span.close()),
        ReturnType::Type(_, ty) => ((**ty).clone(), ty.span()),
    };
    if let Type::ImplTrait(t) = &ret {
        errors.push(t, "a step must return a concrete type, not `impl Trait`: the pipeline stores it as an artifact");
    }
    let ok_ty = result_ok_type(&ret);
    let fallible = ok_ty.is_some();
    let value_ty = ok_ty.unwrap_or(ret);

    // Outputs are named explicitly rather than after the function: the
    // function's name is also the step's unit struct, and a parameter named
    // like a unit struct in scope would be read as a pattern for it.
    let output_names: Vec<LitStr> = args.outputs.unwrap_or_default();
    let mut outputs = Vec::new();
    match output_names.len() {
        0 if !is_unit(&value_ty) => errors.add(syn::Error::new(
            ret_span,
            format!("this step returns a value but names no output: add `outputs = [\"{}\"]` (one name per returned value)", sig.ident),
        )),
        0 => {}
        1 => outputs.push(Output { name: output_names[0].value(), span: output_names[0].span(), ty: value_ty }),
        n => match &value_ty {
            Type::Tuple(t) if t.elems.len() == n => {
                for (lit, ty) in output_names.iter().zip(&t.elems) {
                    outputs.push(Output { name: lit.value(), span: lit.span(), ty: ty.clone() });
                }
            }
            Type::Tuple(t) => errors.add(syn::Error::new(
                ret_span,
                format!("`outputs` names {n} artifacts but the step returns a {}-tuple: return one tuple element per output, in order", t.elems.len()),
            )),
            other => errors.add(syn::Error::new(
                ret_span,
                format!("`outputs` names {n} artifacts but the step returns `{}`, not a {n}-tuple: return `({})`", other.to_token_stream(), vec!["_"; n].join(", ")),
            )),
        },
    }
    for (i, o) in output_names.iter().enumerate() {
        if output_names[..i].iter().any(|p| p.value() == o.value()) {
            errors.push(o, format!("output `{}` is listed twice", o.value()));
        }
    }

    let name = args
        .name
        .as_ref()
        .map_or_else(|| sig.ident.to_string(), LitStr::value);
    if let (Some(fallback), None) = (&args.fallback, gpu_param) {
        errors.push(
            fallback,
            "`fallback` names the CPU version of a GPU step: add `gpu` and a `&Gpu` parameter, or remove `fallback`",
        );
    }
    errors.finish()?;
    Ok(StepModel {
        fingerprint: *blake3::hash(func.to_token_stream().to_string().as_bytes()).as_bytes(),
        func: func.clone(),
        name,
        inputs,
        outputs,
        fallible,
        gpu_param,
        gpu: args.gpu,
        fallback: args.fallback,
        watch: args.watch,
    })
}

fn is_unit(ty: &Type) -> bool {
    matches!(ty, Type::Tuple(t) if t.elems.is_empty())
}
