//! Collects every error of a macro invocation so that all are reported at
//! once, each at its own span.

use proc_macro2::TokenStream;
use quote::ToTokens;

/// Errors found so far.
#[derive(Default)]
pub struct Errors(Option<syn::Error>);

impl Errors {
    /// Records an error at `tokens`.
    pub fn push(&mut self, tokens: impl ToTokens, message: impl std::fmt::Display) {
        self.add(syn::Error::new_spanned(tokens, message));
    }

    /// Records `error`.
    pub fn add(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// `Ok` if nothing was recorded.
    pub fn finish(self) -> Result<(), syn::Error> {
        self.0.map_or(Ok(()), Err)
    }
}

/// The user's item unchanged, followed by the errors: rustc reports the
/// errors, and code that uses the item still type-checks.
pub fn with_item(item: impl ToTokens, error: syn::Error) -> TokenStream {
    let mut out = item.into_token_stream();
    out.extend(error.to_compile_error());
    out
}
