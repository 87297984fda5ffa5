//! `#[pipeline]` on an inline module of steps: a named pipeline whose DAG
//! is checked when it compiles.
//!
//! # Why a module and not a list of step paths
//! The module form sees every step's signature in one macro invocation,
//! so each problem is reported at the user's own token: a missing input
//! at the parameter that needs it, a second producer at its `outputs`
//! literal, a cycle at the step that closes it. A list of paths sees only
//! names and needs const-evaluated checks whose errors point at the macro
//! call. Steps defined elsewhere can still be added to the generated
//! pipeline at run time with `add_step`, validated then.
//!
//! Type agreement between a producer and a consumer is left to rustc, which
//! knows what the type names resolve to: for each edge the expansion
//! requires `Producer: SameAs<Consumer>` through a local trait whose
//! `#[diagnostic::on_unimplemented]` message names the pipeline, both
//! steps and the artifact, spanned at the consumer's parameter type.

use std::collections::{BTreeMap, HashMap};

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::punctuated::Punctuated;
use syn::{Item, LitStr, Token};

use crate::errors::{Errors, with_item};
use crate::step::model::StepModel;
use crate::step::parse::parse_step;

struct Args {
    name: Option<LitStr>,
    inputs: Vec<LitStr>,
}

fn parse_args(args: TokenStream) -> syn::Result<Args> {
    let mut parsed = Args {
        name: None,
        inputs: Vec::new(),
    };
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("name") {
            parsed.name = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("inputs") {
            let value = meta.value()?;
            let content;
            syn::bracketed!(content in value);
            parsed.inputs = Punctuated::<LitStr, Token![,]>::parse_terminated(&content)?
                .into_iter()
                .collect();
        } else {
            return Err(meta.error(format!(
                "unknown #[pipeline] argument `{}`: the arguments are `name = \"..\"` and `inputs = [\"..\"]` (artifacts given at run time)",
                meta.path.to_token_stream()
            )));
        }
        Ok(())
    });
    syn::parse::Parser::parse2(parser, args)?;
    Ok(parsed)
}

fn is_step_attr(attr: &syn::Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|s| s.ident == "step")
}

/// The step models of the module's `#[step]` functions. Steps whose own
/// attribute is wrong are left out: `#[step]` reports their errors.
fn steps_of(module: &syn::ItemMod) -> Vec<StepModel> {
    let Some((_, items)) = &module.content else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let Item::Fn(f) = item else { return None };
            let attr = f.attrs.iter().find(|a| is_step_attr(a))?;
            let args = match &attr.meta {
                syn::Meta::List(l) => l.tokens.clone(),
                _ => TokenStream::new(),
            };
            let mut func = f.clone();
            func.attrs.retain(|a| !is_step_attr(a));
            parse_step(args, &func).ok()
        })
        .collect()
}

pub fn pipeline(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut module = match syn::parse2::<syn::ItemMod>(item.clone()) {
        Ok(m) if m.content.is_some() => m,
        _ => {
            let err = syn::Error::new_spanned(
                &item,
                "#[pipeline] goes on an inline module of steps: `#[pipeline] mod training { #[step(..)] fn load() -> .. { .. } .. }`",
            );
            return with_item(item, err);
        }
    };
    qualify_step_attrs(&mut module);
    let args = match parse_args(args) {
        Ok(a) => a,
        Err(e) => return with_item(module, e),
    };
    let name = args
        .name
        .as_ref()
        .map_or_else(|| module.ident.to_string(), LitStr::value);
    let steps = steps_of(&module);
    let mut errors = Errors::default();
    let edges = check(&name, &args, &module, &steps, &mut errors);
    match errors.finish() {
        Ok(()) => expand(module, &name, &steps, &edges),
        Err(e) => with_item(module, e),
    }
}

/// Makes `#[step]` inside the module work without an import.
fn qualify_step_attrs(module: &mut syn::ItemMod) {
    let Some((_, items)) = &mut module.content else {
        return;
    };
    for item in items.iter_mut() {
        let Item::Fn(f) = item else { continue };
        for attr in f.attrs.iter_mut().filter(|a| a.path().is_ident("step")) {
            match &mut attr.meta {
                syn::Meta::List(list) => list.path = syn::parse_quote!(::flowyml::step),
                meta => *meta = syn::parse_quote!(::flowyml::step),
            }
        }
    }
}

/// A producer → consumer edge: (producer step, output), (consumer step, input).
type Edge = ((usize, usize), (usize, usize));

fn check(
    name: &str,
    args: &Args,
    module: &syn::ItemMod,
    steps: &[StepModel],
    errors: &mut Errors,
) -> Vec<Edge> {
    let mut by_name: HashMap<&str, usize> = HashMap::new();
    for (i, s) in steps.iter().enumerate() {
        if let Some(first) = by_name.insert(&s.name, i) {
            errors.push(&s.func.sig.ident, format!("pipeline `{name}`: step name `{}` is used twice (also by `{}`): give one of them `name = \"..\"`", s.name, steps[first].func.sig.ident));
        }
    }
    if steps.is_empty() {
        errors.push(
            &module.ident,
            format!("pipeline `{name}` has no `#[step]` functions"),
        );
    }

    // Producers: run-time inputs, then step outputs.
    let mut producers: BTreeMap<String, Option<(usize, usize)>> = BTreeMap::new();
    for lit in &args.inputs {
        if producers.insert(lit.value(), None).is_some() {
            errors.push(
                lit,
                format!(
                    "pipeline `{name}`: run-time input `{}` is listed twice",
                    lit.value()
                ),
            );
        }
    }
    for (si, s) in steps.iter().enumerate() {
        for (oi, o) in s.outputs.iter().enumerate() {
            match producers.get(&o.name) {
                Some(prev) => {
                    let by = prev.map_or_else(
                        || "a run-time input".to_owned(),
                        |(p, _)| format!("step `{}`", steps[p].name),
                    );
                    errors.add(syn::Error::new(o.span, format!("pipeline `{name}`: artifact `{}` is produced twice, by {by} and by step `{}`: rename one output", o.name, s.name)));
                }
                None => {
                    producers.insert(o.name.clone(), Some((si, oi)));
                }
            }
        }
    }

    let mut edges = Vec::new();
    for (ci, c) in steps.iter().enumerate() {
        for (ii, input) in c.inputs.iter().enumerate() {
            match producers.get(&input.name) {
                Some(Some(p)) => edges.push((*p, (ci, ii))),
                Some(None) => {}
                None => {
                    let hint = match flowyml_suggest::did_you_mean(
                        &input.name,
                        producers.keys().map(String::as_str),
                    ) {
                        h if h.is_empty() => format!(
                            "; add a step with `outputs = [\"{0}\"]`, or declare a run-time input with `#[pipeline(inputs = [\"{0}\"])]`",
                            input.name
                        ),
                        h => h,
                    };
                    errors.add(syn::Error::new(input.span, format!("pipeline `{name}`: step `{}` needs artifact `{}`, which no step produces{hint}", c.name, input.name)));
                }
            }
        }
    }

    if let Some(cycle) = find_cycle(steps.len(), &edges) {
        let path: Vec<&str> = cycle.iter().map(|&i| steps[i].name.as_str()).collect();
        let first = &steps[cycle[0]];
        errors.push(
            &first.func.sig.ident,
            format!(
                "pipeline `{name}` has a cycle: {} -> {}: a step cannot depend on its own output",
                path.join(" -> "),
                path[0]
            ),
        );
    }
    edges
}

/// A cycle among steps, in dependency order, if there is one.
fn find_cycle(n: usize, edges: &[Edge]) -> Option<Vec<usize>> {
    let mut next: Vec<Vec<usize>> = vec![Vec::new(); n];
    for ((p, _), (c, _)) in edges {
        next[*p].push(*c);
    }
    // 0 = unvisited, 1 = on the current path, 2 = done.
    let mut state = vec![0u8; n];
    let mut path = Vec::new();
    fn visit(
        v: usize,
        next: &[Vec<usize>],
        state: &mut [u8],
        path: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        state[v] = 1;
        path.push(v);
        for &w in &next[v] {
            if state[w] == 1 {
                let at = path.iter().position(|&x| x == w).expect("on the path");
                return Some(path[at..].to_vec());
            }
            if state[w] == 0
                && let Some(c) = visit(w, next, state, path)
            {
                return Some(c);
            }
        }
        path.pop();
        state[v] = 2;
        None
    }
    (0..n).find_map(|v| {
        if state[v] == 0 {
            visit(v, &next, &mut state, &mut path)
        } else {
            None
        }
    })
}

fn expand(
    mut module: syn::ItemMod,
    name: &str,
    steps: &[StepModel],
    edges: &[Edge],
) -> TokenStream {
    let idents: Vec<_> = steps.iter().map(|s| &s.func.sig.ident).collect();
    let checks = edges.iter().enumerate().map(|(k, ((p, o), (c, i)))| {
        let (producer, consumer) = (&steps[*p], &steps[*c]);
        let out_ty = &producer.outputs[*o].ty;
        let in_ty = &consumer.inputs[*i].ty;
        let message = format!(
            "pipeline `{name}`: step `{}` takes artifact `{}` as `{{Self}}`, but step `{}` produces it as `{{T}}`",
            consumer.name, consumer.inputs[*i].name, producer.name
        );
        let note = format!("`{}` is the output of `{}`; change one of the two types so they agree", consumer.inputs[*i].name, producer.name);
        let trait_ = format_ident!("__FlowymlSameType{}", k);
        let span = in_ty.to_token_stream().into_iter().next().map_or_else(Span::call_site, |t| t.span());
        let call = quote_spanned!(span=> __require::<#in_ty, #out_ty>(););
        quote! {
            const _: () = {
                #[diagnostic::on_unimplemented(message = #message, label = "artifact type mismatch", note = #note)]
                trait #trait_<T: ?Sized> {}
                impl<T: ?Sized> #trait_<T> for T {}
                #[allow(dead_code)]
                fn __check() {
                    fn __require<A: ?Sized + #trait_<B>, B: ?Sized>() {}
                    #call
                }
            };
        }
    });
    let doc = format!("The `{name}` pipeline of this module's steps, checked at compile time.");
    let generated: TokenStream = quote! {
        #[doc = #doc]
        pub fn pipeline() -> ::flowyml::Pipeline {
            let mut pipeline = ::flowyml::Pipeline::new(#name);
            #( pipeline.add_step(#idents); )*
            pipeline
        }

        /// The pipeline's name.
        pub const NAME: &str = #name;

        ::flowyml::__private::inventory::submit! {
            ::flowyml::__private::RegisteredPipeline {
                name: #name,
                module_path: ::core::module_path!(),
                build: pipeline,
            }
        }

        #(#checks)*
    };
    if let Some((_, items)) = &mut module.content {
        items.push(Item::Verbatim(generated));
    }
    module.into_token_stream()
}
