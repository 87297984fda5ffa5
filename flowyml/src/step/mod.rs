//! Steps: what `#[step]` generates, and how a pipeline calls it.
//!
//! A step is a value implementing [`Step`]: its [`StepSpec`] (name, inputs
//! and outputs with their types, code fingerprint, the resources it uses)
//! and a [`run`](Step::run) that reads its inputs from a [`StepContext`]
//! and writes its outputs into it. `#[step]` generates both from a plain
//! function and registers the step ([`registered`]); [`FnStep`] builds one
//! at run time (for generated or very large pipelines).

mod body;
mod context;
mod fn_step;
#[doc(hidden)]
pub mod returned;
mod spec;
mod traits;

use std::any::TypeId;
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use crate::artifact::Codec;
use crate::error::{BoxError, Problem};

pub(crate) use body::RawCall;
pub use body::StepBody;
pub use context::{FileRead, StepContext};
pub(crate) use context::{Gathered, Said, Specs};
pub use fn_step::{FnStep, FnStepBuilder};
pub use spec::{ArtifactSpec, StepSpec};
pub use traits::{IntoStep, Step, StepFunction, StepValue};

/// Keeps the panics of steps from printing the default panic message and
/// backtrace to stderr: a panicking step already fails with the panic's
/// message in its record and error, so the message would show twice.
/// Panics elsewhere print as before. Installs a process-wide panic hook,
/// so only programs call it (the CLI does), never a library.
pub fn silence_step_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // Steps run on the executor's workers, or on a thread of their
            // own under a time limit; both catch the panic.
            let on_a_step_thread = std::thread::current().name().is_some_and(|n| {
                n.starts_with("flowyml-worker-") || n.starts_with("flowyml-step-")
            });
            if !on_a_step_thread {
                previous(info);
            }
        }));
    });
}

/// A step registered by `#[step]` for the function whose item type is
/// [`function`](Self::function). Made by the macro; see [`registered`].
pub struct RegisteredStep {
    /// The step itself.
    pub step: &'static dyn Step,
    /// The `TypeId` of the annotated function's item type, by which
    /// `add_step(function)` finds the step.
    pub function: fn() -> TypeId,
}

impl fmt::Debug for RegisteredStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RegisteredStep")
            .field(&self.step.spec().name)
            .finish()
    }
}

inventory::collect!(RegisteredStep);

/// Every step `#[step]` registered in the program, sorted by module path
/// and name.
pub fn registered() -> Vec<&'static StepSpec> {
    let mut steps: Vec<_> = inventory::iter::<RegisteredStep>
        .into_iter()
        .map(|s| s.step.spec())
        .collect();
    steps.sort_by(|a, b| (&a.module_path, &a.name).cmp(&(&b.module_path, &b.name)));
    steps
}

/// The step `#[step]` made of the function whose item type is `F`.
fn registered_for<F: 'static>() -> Option<&'static dyn Step> {
    static BY_FUNCTION: OnceLock<HashMap<TypeId, &'static dyn Step>> = OnceLock::new();
    BY_FUNCTION
        .get_or_init(|| {
            inventory::iter::<RegisteredStep>
                .into_iter()
                .map(|s| ((s.function)(), s.step))
                .collect()
        })
        .get(&TypeId::of::<F>())
        .copied()
}

/// A registered step, shared.
struct Registered(&'static dyn Step);

impl Step for Registered {
    fn spec(&self) -> &StepSpec {
        self.0.spec()
    }
    fn run(&self, ctx: &mut StepContext<'_>) -> Result<(), BoxError> {
        self.0.run(ctx)
    }
    fn codecs(&self) -> Cow<'_, [Codec]> {
        self.0.codecs()
    }
    fn input_codecs(&self) -> Cow<'_, [Codec]> {
        self.0.input_codecs()
    }
}

/// A function given to `add_step` without `#[step]`: validation reports it.
struct NotAStep {
    spec: StepSpec,
}

impl Step for NotAStep {
    fn spec(&self) -> &StepSpec {
        &self.spec
    }
    fn run(&self, _: &mut StepContext<'_>) -> Result<(), BoxError> {
        Err(self
            .problem()
            .map(|p| p.to_string())
            .unwrap_or_default()
            .into())
    }
    fn problem(&self) -> Option<Problem> {
        Some(Problem::NotAStep {
            function: self.spec.name.to_string(),
        })
    }
}

fn function_step<F: 'static>() -> Arc<dyn Step> {
    match registered_for::<F>() {
        Some(step) => Arc::new(Registered(step)),
        None => Arc::new(NotAStep {
            spec: FnStep::builder(std::any::type_name::<F>()).into_spec(),
        }),
    }
}

macro_rules! function_steps {
    ($($arg:ident),*) => {
        impl<F, R, $($arg),*> IntoStep<StepFunction<fn($($arg),*) -> R>> for F
        where
            F: Fn($($arg),*) -> R + 'static,
        {
            fn into_step(self) -> Arc<dyn Step> {
                function_step::<F>()
            }
        }
    };
}

function_steps!();
function_steps!(A1);
function_steps!(A1, A2);
function_steps!(A1, A2, A3);
function_steps!(A1, A2, A3, A4);
function_steps!(A1, A2, A3, A4, A5);
function_steps!(A1, A2, A3, A4, A5, A6);
function_steps!(A1, A2, A3, A4, A5, A6, A7);
function_steps!(A1, A2, A3, A4, A5, A6, A7, A8);
function_steps!(A1, A2, A3, A4, A5, A6, A7, A8, A9);
function_steps!(A1, A2, A3, A4, A5, A6, A7, A8, A9, A10);
function_steps!(A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11);
function_steps!(A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11, A12);
