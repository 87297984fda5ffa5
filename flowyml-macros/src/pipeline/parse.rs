//! A `#[pipeline]` module as written: its arguments and its steps.

use proc_macro2::TokenStream;
use syn::{Item, LitStr};

use crate::attr::{Args, Kind};
use crate::ctxt::Ctxt;
use crate::step::model::StepModel;

/// The keys of `#[pipeline(..)]`.
const KEYS: &[(&str, Kind)] = &[
    ("name", Kind::Str),
    ("inputs", Kind::StrList),
    ("crate", Kind::Path),
];

/// A `#[pipeline]` module.
pub struct Parsed {
    /// The module, its `#[step]` attributes made to resolve without an
    /// import.
    pub module: syn::ItemMod,
    /// The pipeline's name (`name = ".."` or the module's).
    pub name: String,
    /// The run-time inputs it declares.
    pub inputs: Vec<LitStr>,
    /// The path of the `flowyml` crate.
    pub krate: syn::Path,
    /// The module's steps whose own attributes are right (`#[step]`
    /// reports the others).
    pub steps: Vec<StepModel>,
}

fn is_step_attr(attr: &syn::Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|s| s.ident == "step")
}

pub fn parse(args: TokenStream, mut module: syn::ItemMod, cx: &Ctxt) -> Parsed {
    let args = Args::parse(args, "#[pipeline]", KEYS, cx);
    let krate: syn::Path = args
        .path("crate")
        .cloned()
        .unwrap_or_else(|| syn::parse_quote!(::flowyml));
    let steps = steps_of(&module);
    qualify_step_attrs(&mut module, &krate);
    Parsed {
        name: args
            .str("name")
            .map_or_else(|| module.ident.to_string(), LitStr::value),
        inputs: args
            .str_list("inputs")
            .map_or_else(Vec::new, |(_, l)| l.to_vec()),
        krate,
        steps,
        module,
    }
}

/// The step models of the module's `#[step]` functions.
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
            crate::step::model(args, &func).ok()
        })
        .collect()
}

/// Makes `#[step]` inside the module work without an import, through the
/// crate's `__private` path.
fn qualify_step_attrs(module: &mut syn::ItemMod, krate: &syn::Path) {
    let Some((_, items)) = &mut module.content else {
        return;
    };
    let path: syn::Path = syn::parse_quote!(#krate::__private::step);
    for item in items.iter_mut() {
        let Item::Fn(f) = item else { continue };
        for attr in f.attrs.iter_mut().filter(|a| a.path().is_ident("step")) {
            match &mut attr.meta {
                syn::Meta::List(list) => list.path = path.clone(),
                meta => *meta = syn::Meta::Path(path.clone()),
            }
        }
    }
}
