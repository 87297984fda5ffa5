//! [`Ctxt`]: collects every error of a macro invocation so that all are
//! reported at once, each at its own span, and [`with_item`]: what a macro
//! emits when it found errors.

use std::cell::RefCell;

use proc_macro2::TokenStream;
use quote::ToTokens;

/// The errors found so far. Must be [`check`](Self::check)ed before it is
/// dropped: a collector dropped unchecked would silently swallow its
/// errors, so it panics (as serde_derive's does) to catch that in tests.
pub struct Ctxt {
    errors: RefCell<Option<Vec<syn::Error>>>,
}

impl Ctxt {
    /// An empty collector.
    pub fn new() -> Self {
        Ctxt {
            errors: RefCell::new(Some(Vec::new())),
        }
    }

    /// Records an error at `tokens`.
    pub fn error_at(&self, tokens: impl ToTokens, message: impl std::fmt::Display) {
        self.error(syn::Error::new_spanned(tokens, message));
    }

    /// Records `error`.
    pub fn error(&self, error: syn::Error) {
        self.errors
            .borrow_mut()
            .as_mut()
            .expect("errors recorded after the check")
            .push(error);
    }

    /// `Ok` if nothing was recorded, else every error combined.
    pub fn check(self) -> syn::Result<()> {
        let errors = self.errors.take().expect("checked once");
        let mut errors = errors.into_iter();
        match errors.next() {
            None => Ok(()),
            Some(mut all) => {
                for e in errors {
                    all.combine(e);
                }
                Err(all)
            }
        }
    }
}

impl Drop for Ctxt {
    fn drop(&mut self) {
        if !std::thread::panicking() && self.errors.borrow().is_some() {
            panic!("an error collector was dropped without being checked");
        }
    }
}

/// The user's item unchanged, followed by the errors: rustc reports the
/// errors, and code that uses the item still type-checks.
pub fn with_item(item: impl ToTokens, error: syn::Error) -> TokenStream {
    let mut out = item.into_token_stream();
    out.extend(error.to_compile_error());
    out
}
