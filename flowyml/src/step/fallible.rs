//! What a `#[step]` function's error becomes: autoref specialisation
//! (`(&&&Failure(..)).__flowyml_box()`), so that an error type keeps its
//! source chain where it can and is described by its message otherwise.

use std::cell::Cell;
use std::fmt::Display;

use crate::error::BoxError;

/// A step's error, taken once.
pub struct Failure<E>(pub Cell<Option<E>>);

impl<E> Failure<E> {
    /// Wraps `error`.
    pub fn new(error: E) -> Self {
        Failure(Cell::new(Some(error)))
    }

    fn take(&self) -> E {
        self.0.take().expect("a step's error is taken once")
    }
}

/// Errors that convert into a [`BoxError`] (every `Error + Send + Sync`,
/// `String`, `&str`): boxed as they are, so `source()` and `downcast_ref`
/// reach them.
pub trait ViaError {
    /// The error.
    fn __flowyml_box(&self) -> BoxError;
}

impl<E: Into<BoxError>> ViaError for &&Failure<E> {
    fn __flowyml_box(&self) -> BoxError {
        self.take().into()
    }
}

/// Anything else that displays: its message.
pub trait ViaDisplay {
    /// The error.
    fn __flowyml_box(&self) -> BoxError;
}

impl<E: Display> ViaDisplay for &Failure<E> {
    fn __flowyml_box(&self) -> BoxError {
        self.take().to_string().into()
    }
}

#[cfg(test)]
// The three borrows are the point: they pick the most capable impl.
#[allow(clippy::needless_borrow)]
mod tests {
    use super::*;

    #[test]
    fn errors_keep_their_type_and_other_values_their_message() {
        let parse = "x".parse::<u8>().unwrap_err();
        let boxed = (&&&Failure::new(parse.clone())).__flowyml_box();
        assert_eq!(
            boxed.downcast_ref::<std::num::ParseIntError>(),
            Some(&parse)
        );

        struct Shown;
        impl Display for Shown {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("shown")
            }
        }
        assert_eq!(
            (&&&Failure::new(Shown)).__flowyml_box().to_string(),
            "shown"
        );
    }
}
