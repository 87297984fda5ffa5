//! `#[step]`: a plain function becomes a pipeline step.
//!
//! [`parse`] reads the attribute and signature into a [`model::StepModel`],
//! checking everything and collecting every error; [`expand`] generates the
//! step. `#[pipeline]` reuses [`parse`] to see its steps' signatures.

pub mod expand;
pub mod model;
pub mod parse;

use proc_macro2::TokenStream;

use crate::errors::with_item;

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
    match parse::parse_step(args, &func) {
        Ok(model) => expand::expand(&model),
        Err(err) => with_item(func, err),
    }
}
