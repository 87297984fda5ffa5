//! The rules a `#[step]` function must follow, one function each. Every
//! error is recorded at the user's token and says how to fix it.

use syn::Type;

use super::parse::{ParamKind, Parsed};
use crate::ctxt::Ctxt;

/// Applies every rule.
pub fn check(step: &Parsed, cx: &Ctxt) {
    not_async(step, cx);
    not_generic(step, cx);
    not_unsafe(step, cx);
    not_variadic(step, cx);
    parameters_are_artifacts(step, cx);
    gpu_context_is_declared(step, cx);
    one_step_context(step, cx);
    inputs_name_every_parameter(step, cx);
    returns_a_concrete_type(step, cx);
    outputs_are_named(step, cx);
    outputs_match_the_returned_values(step, cx);
    outputs_are_distinct(step, cx);
    fallback_is_for_a_gpu_step(step, cx);
    retries_are_a_count(step, cx);
    durations_are_durations(step, cx);
}

fn retries_are_a_count(step: &Parsed, cx: &Ctxt) {
    if let Some(n) = step.args.int("retries")
        && n.base10_parse::<u32>().is_err()
    {
        cx.error_at(n, "`retries` is how many times to retry a failed step: a whole number such as `retries = 3`");
    }
}

fn durations_are_durations(step: &Parsed, cx: &Ctxt) {
    for key in ["backoff", "timeout"] {
        if let Some(lit) = step.args.str(key)
            && crate::attr::duration_ns(&lit.value()).is_none()
        {
            cx.error_at(
                lit,
                format!("`{key} = \"{}\"` is not a duration: write it as `200ms`, `30s`, `1.5s` or `2m`", lit.value()),
            );
        }
    }
}

fn not_async(step: &Parsed, cx: &Ctxt) {
    if let Some(a) = &step.func.sig.asyncness {
        cx.error_at(a, "a step cannot be `async`: flowyml runs steps on its thread pool; block on the future inside the step if you must");
    }
}

fn not_generic(step: &Parsed, cx: &Ctxt) {
    if !step.func.sig.generics.params.is_empty() {
        cx.error_at(&step.func.sig.generics, "a step cannot be generic: the pipeline needs each artifact's concrete type; write one step per type");
    }
}

fn not_unsafe(step: &Parsed, cx: &Ctxt) {
    if let Some(u) = &step.func.sig.unsafety {
        cx.error_at(
            u,
            "a step cannot be `unsafe fn`: wrap the unsafe code in a safe function",
        );
    }
}

fn not_variadic(step: &Parsed, cx: &Ctxt) {
    if let Some(v) = &step.func.sig.variadic {
        cx.error_at(v, "a step cannot be variadic");
    }
}

fn parameters_are_artifacts(step: &Parsed, cx: &Ctxt) {
    for p in &step.params {
        match &p.kind {
            ParamKind::Receiver(r) => cx.error_at(r, "a step is a free function: remove `self`"),
            ParamKind::Pattern(pat) => cx.error_at(pat, "a step parameter must be a plain name: its name is the artifact it receives (or use `inputs = [...]`)"),
            ParamKind::Artifact { written: Type::Reference(r), .. } if r.mutability.is_some() => {
                cx.error_at(r, "a step cannot mutate a shared artifact: take `&T`, or an owned `T` (cloned for this step)");
            }
            ParamKind::Artifact { ty: Type::ImplTrait(t), .. } => {
                cx.error_at(t, "a step parameter needs a concrete type, not `impl Trait`");
            }
            _ => {}
        }
    }
}

fn gpu_context_is_declared(step: &Parsed, cx: &Ctxt) {
    let mut seen = false;
    for p in &step.params {
        let ParamKind::Gpu(ty) = &p.kind else {
            continue;
        };
        if !step.args.flag("gpu") {
            cx.error_at(
                ty,
                "this step takes a `&Gpu` context: add `gpu` to its attribute, `#[step(..., gpu)]`",
            );
        }
        if std::mem::replace(&mut seen, true) {
            cx.error_at(ty, "a step takes at most one `&Gpu` context");
        }
    }
}

fn one_step_context(step: &Parsed, cx: &Ctxt) {
    let contexts = step.params.iter().filter_map(|p| match &p.kind {
        ParamKind::Context { ty, .. } => Some(ty),
        _ => None,
    });
    for ty in contexts.skip(1) {
        cx.error_at(ty, "a step takes at most one `StepContext`");
    }
}

fn inputs_name_every_parameter(step: &Parsed, cx: &Ctxt) {
    let Some((span, names)) = step.args.str_list("inputs") else {
        return;
    };
    let params = step.artifacts().count();
    if names.len() != params {
        cx.error(syn::Error::new(
            span,
            format!(
                "`inputs` names {} artifact(s) but `{}` takes {params} artifact parameter(s): name one artifact per parameter, in order",
                names.len(),
                step.func.sig.ident,
            ),
        ));
    }
}

fn returns_a_concrete_type(step: &Parsed, cx: &Ctxt) {
    if let Type::ImplTrait(t) = &step.ret {
        cx.error_at(t, "a step must return a concrete type, not `impl Trait`: the pipeline stores it as an artifact");
    }
}

fn is_unit(ty: &Type) -> bool {
    matches!(ty, Type::Tuple(t) if t.elems.is_empty())
}

fn outputs_are_named(step: &Parsed, cx: &Ctxt) {
    if step.args.is_complete() && step.output_names().is_empty() && !is_unit(&step.value_type()) {
        cx.error(syn::Error::new(
            step.ret_span,
            format!(
                "this step returns a value but names no output: add `outputs = [\"{}\"]` (one name per returned value)",
                step.func.sig.ident
            ),
        ));
    }
}

fn outputs_match_the_returned_values(step: &Parsed, cx: &Ctxt) {
    let n = step.output_names().len();
    if n < 2 {
        return;
    }
    match step.value_type() {
        Type::Tuple(t) if t.elems.len() == n => {}
        Type::Tuple(t) => cx.error(syn::Error::new(
            step.ret_span,
            format!("`outputs` names {n} artifacts but the step returns a {}-tuple: return one tuple element per output, in order", t.elems.len()),
        )),
        other => cx.error(syn::Error::new(
            step.ret_span,
            format!(
                "`outputs` names {n} artifacts but the step returns `{}`, not a {n}-tuple: return `({})`",
                quote::ToTokens::to_token_stream(&other),
                vec!["_"; n].join(", ")
            ),
        )),
    }
}

fn outputs_are_distinct(step: &Parsed, cx: &Ctxt) {
    let names = step.output_names();
    for (i, o) in names.iter().enumerate() {
        if names[..i].iter().any(|p| p.value() == o.value()) {
            cx.error_at(o, format!("output `{}` is listed twice", o.value()));
        }
    }
}

fn fallback_is_for_a_gpu_step(step: &Parsed, cx: &Ctxt) {
    if let (Some(fallback), None) = (step.args.path("fallback"), step.gpu_param()) {
        cx.error_at(
            fallback,
            "`fallback` names the CPU version of a GPU step: add `gpu` and a `&Gpu` parameter, or remove `fallback`",
        );
    }
}
