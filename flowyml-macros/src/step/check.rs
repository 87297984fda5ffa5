//! The rules a `#[step]` function must follow, one function each. Every
//! error is recorded at the user's token and says how to fix it.

use syn::Type;

use super::parse::{ParamKind, Parsed};
use crate::ctxt::Ctxt;
use crate::types::{owned_form, type_name};

/// Applies every rule.
pub fn check(step: &Parsed, cx: &Ctxt) {
    not_async(step, cx);
    lifetimes_only(step, cx);
    not_unsafe(step, cx);
    not_variadic(step, cx);
    parameters_are_artifacts(step, cx);
    artifact_parameters_are_sized(step, cx);
    gpu_context_is_declared(step, cx);
    one_step_context(step, cx);
    inputs_name_every_parameter(step, cx);
    returns_a_concrete_type(step, cx);
    returns_owned_values(step, cx);
    names_are_not_empty(step, cx);
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

/// Lifetime parameters are fine where elision would be (`fn f<'a>(x:
/// &'a Vec<u32>)`): each borrows one artifact for the call. Types and
/// consts are not: the pipeline needs each artifact's concrete type.
fn lifetimes_only(step: &Parsed, cx: &Ctxt) {
    let generics = &step.func.sig.generics;
    for param in &generics.params {
        match param {
            syn::GenericParam::Lifetime(l) if l.bounds.is_empty() => {}
            syn::GenericParam::Lifetime(l) => cx.error_at(l, "a step's lifetime parameters cannot have bounds: each artifact parameter borrows its own artifact for the call"),
            other => cx.error_at(other, "a step cannot be generic over types or constants: the pipeline needs each artifact's concrete type; write one step per type"),
        }
    }
    if let Some(w) = &generics.where_clause {
        cx.error_at(
            w,
            "a step cannot have a `where` clause: its artifacts have concrete types",
        );
    }
    let declared: Vec<&syn::Lifetime> = generics.lifetimes().map(|l| &l.lifetime).collect();
    if declared.is_empty() {
        return;
    }
    // Anywhere but the outer `&'a` of a parameter, a declared lifetime
    // ties an artifact's type (or the output) to the call.
    let mut misplaced = Vec::new();
    for p in &step.params {
        if let ParamKind::Artifact { ty, .. } | ParamKind::Context { ty, .. } | ParamKind::Gpu(ty) =
            &p.kind
        {
            let inner = match &p.kind {
                ParamKind::Artifact { ty, .. } => ty,
                _ => match ty {
                    Type::Reference(r) => &r.elem,
                    other => other,
                },
            };
            lifetimes_in(inner, &declared, &mut misplaced);
        }
    }
    lifetimes_in(&step.ret, &declared, &mut misplaced);
    for l in misplaced {
        cx.error_at(l, format!("`{l}` can only be the lifetime of a parameter's outer `&{l}`: artifact types and outputs are owned (`'static`)"));
    }
}

fn lifetimes_in<'t>(ty: &'t Type, declared: &[&syn::Lifetime], out: &mut Vec<&'t syn::Lifetime>) {
    struct Find<'d, 't> {
        declared: &'d [&'d syn::Lifetime],
        out: &'d mut Vec<&'t syn::Lifetime>,
    }
    impl<'t> syn::visit::Visit<'t> for Find<'_, 't> {
        fn visit_lifetime(&mut self, l: &'t syn::Lifetime) {
            if self.declared.contains(&l) {
                self.out.push(l);
            }
        }
    }
    syn::visit::Visit::visit_type(&mut Find { declared, out }, ty);
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

/// An artifact is a sized, owned value: a `&[u32]`, `&str` or `&dyn Trait`
/// parameter names a type no step can produce.
fn artifact_parameters_are_sized(step: &Parsed, cx: &Ctxt) {
    for p in &step.params {
        let ParamKind::Artifact { ty, .. } = &p.kind else {
            continue;
        };
        let hint = match ty {
            Type::Slice(s) => format!(
                "take `&Vec<{}>` for a `Vec<{0}>` artifact",
                type_name(&s.elem)
            ),
            Type::TraitObject(_) => {
                "take the concrete type, or `&Arc<dyn ..>` for an artifact that is one".to_owned()
            }
            Type::Path(p) if p.qself.is_none() && p.path.is_ident("str") => {
                "take `&String` for a `String` artifact".to_owned()
            }
            Type::Path(p)
                if p.qself.is_none()
                    && p.path.segments.last().is_some_and(|s| s.ident == "Path")
                    && p.path
                        .segments
                        .last()
                        .is_some_and(|s| s.arguments.is_none()) =>
            {
                "take `&PathBuf` for a `PathBuf` artifact".to_owned()
            }
            _ => continue,
        };
        cx.error_at(
            ty,
            format!(
                "an artifact parameter borrows a whole, sized artifact; `{}` is not one: {hint}",
                type_name(ty)
            ),
        );
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

/// Outputs outlive the call: a step that returns a borrow (of one of its
/// inputs, say) has nothing the pipeline could keep. (A `&'static` one
/// could be kept, but not stored: the cache deserializes owned values.)
fn returns_owned_values(step: &Parsed, cx: &Ctxt) {
    let value = step.written_value_type();
    let values: Vec<&Type> = match value {
        Type::Tuple(t) if step.output_names().len() > 1 => t.elems.iter().collect(),
        other => vec![other],
    };
    for ty in values {
        if let Type::Reference(r) = ty {
            cx.error_at(r, format!(
                "a step returns owned values: artifacts outlive the call, so return `{}` (clone or build it), not a reference",
                owned_form(&r.elem),
            ));
        }
    }
}

fn names_are_not_empty(step: &Parsed, cx: &Ctxt) {
    for key in ["inputs", "outputs"] {
        for lit in step.args.str_list(key).map_or(&[][..], |(_, l)| l) {
            if lit.value().trim().is_empty() {
                cx.error_at(lit, format!("an artifact name cannot be empty: name each of the step's {key}, e.g. `{key} = [\"features\"]`"));
            }
        }
    }
}

fn outputs_are_named(step: &Parsed, cx: &Ctxt) {
    // Conclusive only for a tuple written out; any other type is checked by
    // type in the expansion (an alias may well be `()`).
    if step.args.is_complete()
        && step.output_names().is_empty()
        && matches!(step.written_value_type(), Type::Tuple(t) if !t.elems.is_empty())
    {
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
    // A tuple written out is conclusive; any other type (an alias of a
    // tuple, say) is split by type in the expansion.
    if let Type::Tuple(t) = step.written_value_type()
        && t.elems.len() != n
    {
        cx.error(syn::Error::new(
            step.ret_span,
            format!("`outputs` names {n} artifacts but the step returns a {}-tuple: return one tuple element per output, in order", t.elems.len()),
        ));
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
