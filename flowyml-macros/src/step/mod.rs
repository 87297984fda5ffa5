//! `#[step]`: a plain function becomes a pipeline step.
//!
//! As in serde_derive: [`parse`] reads the attribute and the signature
//! into a [`parse::Parsed`] without judging it, [`check`] applies each
//! rule (one function per rule, every error collected), [`model`] turns
//! what passed into a [`model::StepModel`], and [`expand`] generates the
//! step. `#[pipeline]` reuses the first three to see its steps.

pub mod check;
pub mod expand;
pub mod model;
pub mod parse;

use proc_macro2::TokenStream;

use crate::ctxt::{Ctxt, with_item};

pub fn step(args: TokenStream, item: TokenStream) -> TokenStream {
    let func = match syn::parse2::<syn::ItemFn>(item.clone()) {
        Ok(f) => f,
        Err(_) => {
            let err = syn::Error::new_spanned(
                &item,
                "#[step] goes on a function: `#[step(outputs = [\"clean\"])] fn clean(raw: &Vec<f64>) -> Vec<f64> { ... }`",
            );
            return with_item(item, err);
        }
    };
    match model(args, &func) {
        Ok(model) => expand::expand(&model),
        Err(err) => with_item(func, err),
    }
}

/// Parses and checks the step `func` with attribute arguments `args`.
pub fn model(args: TokenStream, func: &syn::ItemFn) -> syn::Result<model::StepModel> {
    let cx = Ctxt::new();
    let parsed = parse::parse(args, func, &cx);
    check::check(&parsed, &cx);
    cx.check()?;
    Ok(model::StepModel::from(parsed))
}
