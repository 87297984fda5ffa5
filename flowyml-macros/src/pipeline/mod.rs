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
//! knows what the type names resolve to (see [`expand`]).
//!
//! As `#[step]`: [`parse`], then [`check`] (one function per rule, every
//! error collected), then [`expand`].

mod check;
mod expand;
mod parse;

use proc_macro2::TokenStream;

use crate::ctxt::{Ctxt, with_item};

pub fn pipeline(args: TokenStream, item: TokenStream) -> TokenStream {
    let module = match syn::parse2::<syn::ItemMod>(item.clone()) {
        Ok(m) if m.content.is_some() => m,
        _ => {
            let err = syn::Error::new_spanned(
                &item,
                "#[pipeline] goes on an inline module of steps: `#[pipeline] mod training { #[step(..)] fn load() -> .. { .. } .. }`",
            );
            return with_item(item, err);
        }
    };
    let cx = Ctxt::new();
    let parsed = parse::parse(args, module, &cx);
    let edges = check::check(&parsed, &cx);
    match cx.check() {
        Ok(()) => expand::expand(parsed, &edges),
        Err(e) => with_item(parsed.module, e),
    }
}
