//! What a `#[step]` function's return value becomes, decided by its type
//! rather than by how the return type is spelt.
//!
//! The macro sees only tokens: `type Fallible<T> = Result<T, String>` reads
//! like any other type, and a tuple alias `type Stats = (f64, usize)` has
//! no visible arity. So the expansion asks the compiler instead:
//! [`Returned`] is probed by autoref specialisation (the impls sit on
//! `&&&&Returned<R>` down to `Returned<R>`, and method lookup tries the
//! most borrowed receiver first), which picks, for the step's return type
//! `R`:
//!
//! | `R`                                      | outputs | an `Err(e)` fails the step with |
//! |------------------------------------------|---------|---------------------------------|
//! | `Result<T, E>`, `E: Into<BoxError>`      | `T`     | `e` itself (its source chain and `downcast_ref` kept) |
//! | `Result<T, E>`, `E: Display`             | `T`     | `e`'s message                    |
//! | `Result<T, E>`, `E: Debug`               | `T`     | `e`'s debug form                 |
//! | any other `Result<T, E>`                 | `T`     | the error type's name            |
//! | anything else                            | `R`     | (cannot fail)                    |
//!
//! The same probe, without a value, gives the output types for the step's
//! [`StepSpec`](super::StepSpec) ([`Returned::probe`] returns a
//! [`Probe`] of them), and [`ReturnsOutputs`] splits a tuple of several
//! outputs by its type, alias or not.

use std::any::type_name;
use std::cell::Cell;
use std::fmt::{Debug, Display};

use crate::artifact::probe::Probe;
use crate::error::BoxError;

/// A step's return value, taken once; or, made by [`probe`](Self::probe),
/// only its type.
pub struct Returned<R>(Cell<Option<R>>);

impl<R> Returned<R> {
    /// Wraps the value a step returned.
    pub fn new(value: R) -> Self {
        Returned(Cell::new(Some(value)))
    }

    /// No value: for asking what `R` outputs.
    pub fn probe() -> Self {
        Returned(Cell::new(None))
    }

    fn take(&self) -> R {
        self.0
            .take()
            .expect("a step's return value is taken once, from `Returned::new`")
    }
}

/// Declares one level of the probe: a trait whose two methods give the
/// step's outputs (or its failure) and their type.
macro_rules! level {
    ($(#[$doc:meta])* $trait_:ident for $recv:ty where [$($bounds:tt)*], $value:ty, |$me:ident| $take:expr) => {
        $(#[$doc])*
        pub trait $trait_ {
            /// What the step outputs.
            type Value;
            /// The outputs, or the error that fails the step.
            fn __flowyml_value(&self) -> Result<Self::Value, BoxError>;
            /// The outputs' type.
            fn __flowyml_values(&self) -> Probe<Self::Value> {
                Probe::new()
            }
        }
        impl<$($bounds)*> $trait_ for $recv {
            type Value = $value;
            fn __flowyml_value(&self) -> Result<Self::Value, BoxError> {
                let $me = self;
                $take
            }
        }
    };
}

level!(
    /// `Result<T, E>` with an error that converts into a [`BoxError`]
    /// (every `Error + Send + Sync`, `String`, `&str`): boxed as it is.
    ViaError for &&&&Returned<Result<T, E>> where [T, E: Into<BoxError>], T,
    |me| me.take().map_err(Into::into)
);
level!(
    /// `Result<T, E>` with an error that displays: its message.
    ViaDisplay for &&&Returned<Result<T, E>> where [T, E: Display], T,
    |me| me.take().map_err(|e| e.to_string().into())
);
level!(
    /// `Result<T, E>` with an error that only debugs: its debug form.
    ViaDebug for &&Returned<Result<T, E>> where [T, E: Debug], T,
    |me| me.take().map_err(|e| format!("{e:?}").into())
);
level!(
    /// Any other `Result<T, E>`: still a failure, named by the error's type.
    ViaUnshownError for &Returned<Result<T, E>> where [T, E], T,
    |me| me.take().map_err(|_| format!("the step returned an `Err` of type `{}`, which neither displays nor debugs", type_name::<E>()).into())
);
level!(
    /// Anything else: the outputs themselves.
    ViaValue for Returned<R> where [R], R,
    |me| Ok(me.take())
);

/// A step with no outputs returns `()` (or `Result<(), E>`).
#[diagnostic::on_unimplemented(
    message = "this step returns `{Self}` but names no output for it",
    label = "returns a value",
    note = "name one artifact per returned value, e.g. `#[step(outputs = [\"result\"])]`, or return `()`"
)]
pub trait ReturnsNothing {
    /// Nothing to store.
    fn nothing(self);
}

#[diagnostic::do_not_recommend]
impl ReturnsNothing for () {
    fn nothing(self) {}
}

/// A step's `N` outputs, returned as an `N`-tuple (written out or through
/// an alias).
#[diagnostic::on_unimplemented(
    message = "the step's `outputs` name {N} artifacts, but it returns `{Self}`, not a {N}-tuple",
    label = "not a {N}-tuple",
    note = "return one tuple element per output, in order"
)]
pub trait ReturnsOutputs<const N: usize>: Sized {
    /// One [`Probe`] per output.
    type Probes;
    /// The outputs' types.
    fn probes(values: Probe<Self>) -> Self::Probes;
    /// The outputs, as a tuple.
    type Parts;
    /// The outputs.
    fn parts(self) -> Self::Parts;
}

/// `ReturnsOutputs` for one tuple arity.
macro_rules! returns_outputs {
    ($n:literal: $($t:ident),+) => {
        #[diagnostic::do_not_recommend]
        impl<$($t),+> ReturnsOutputs<$n> for ($($t,)+) {
            type Probes = ($(Probe<$t>,)+);
            fn probes(_: Probe<Self>) -> Self::Probes {
                ($(Probe::<$t>::new(),)+)
            }
            type Parts = Self;
            fn parts(self) -> Self {
                self
            }
        }
    };
}

returns_outputs!(2: A, B);
returns_outputs!(3: A, B, C);
returns_outputs!(4: A, B, C, D);
returns_outputs!(5: A, B, C, D, E);
returns_outputs!(6: A, B, C, D, E, F);
returns_outputs!(7: A, B, C, D, E, F, G);
returns_outputs!(8: A, B, C, D, E, F, G, H);
returns_outputs!(9: A, B, C, D, E, F, G, H, I);
returns_outputs!(10: A, B, C, D, E, F, G, H, I, J);
returns_outputs!(11: A, B, C, D, E, F, G, H, I, J, K);
returns_outputs!(12: A, B, C, D, E, F, G, H, I, J, K, L);

#[cfg(test)]
// The borrows are the point: they pick the most capable impl.
#[allow(clippy::needless_borrow)]
mod tests {
    use super::*;

    #[test]
    fn errors_keep_their_type_and_other_values_their_message() {
        let parse = "x".parse::<u8>().unwrap_err();
        let r: Result<u8, _> = Err(parse.clone());
        let boxed = (&&&&&Returned::new(r)).__flowyml_value().unwrap_err();
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
        let r: Result<u8, _> = Err(Shown);
        let e = (&&&&&Returned::new(r)).__flowyml_value().unwrap_err();
        assert_eq!(e.to_string(), "shown");

        #[derive(Debug)]
        struct Debugged;
        let r: Result<u8, _> = Err(Debugged);
        let e = (&&&&&Returned::new(r)).__flowyml_value().unwrap_err();
        assert_eq!(e.to_string(), "Debugged");

        struct Silent;
        let r: Result<u8, _> = Err(Silent);
        let e = (&&&&&Returned::new(r)).__flowyml_value().unwrap_err();
        assert!(e.to_string().contains("Silent"), "{e}");
    }

    #[test]
    fn results_under_any_name_are_fallible() {
        type Fallible<T> = Result<T, String>;
        let r: Fallible<u32> = Err("bad input".into());
        let e = (&&&&&Returned::new(r)).__flowyml_value().unwrap_err();
        assert_eq!(e.to_string(), "bad input");
        let ok: Fallible<u32> = Ok(7);
        assert_eq!((&&&&&Returned::new(ok)).__flowyml_value().unwrap(), 7);
        // Not a result: the value itself.
        assert_eq!((&&&&&Returned::new(7_u8)).__flowyml_value().unwrap(), 7);
    }

    #[test]
    fn the_probe_gives_the_output_types() {
        fn id<T: 'static>(_: Probe<T>) -> std::any::TypeId {
            std::any::TypeId::of::<T>()
        }
        type Stats = (f64, usize);
        let values = (&&&&&Returned::<std::io::Result<Stats>>::probe()).__flowyml_values();
        let (mean, n) = <Stats as ReturnsOutputs<2>>::probes(values);
        assert_eq!(id(mean), std::any::TypeId::of::<f64>());
        assert_eq!(id(n), std::any::TypeId::of::<usize>());
    }
}
