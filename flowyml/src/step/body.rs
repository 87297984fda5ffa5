//! [`StepBody`]: a step's code as a value a pipeline keeps beside its other
//! per-step state, in one flat array.
//!
//! # Why a copied body
//! A pipeline of 100,000 closure steps spends most of a rerun missing the
//! CPU's caches: a closure's captures live in a heap object of their own,
//! allocated between the step's names and lists, so reaching each step's
//! code is a load from a different place in memory. A closure that
//! captures nothing has no such object. One that captures only `Copy`
//! values (an index, a weight, a `&'static` table) can be copied: up to
//! two words of it are kept inline in the body, so the pipeline's array of
//! step records holds the captures themselves, and a run reads them with
//! the rest of the step's record.
//!
//! # Why it is sound
//! A copied body is the closure's bytes in a buffer of two `usize`s, and a
//! function pointer monomorphised for the closure's type that reads them
//! back as that type. Only [`StepBody::copied`] makes one, and it:
//! - checks that the type fits the buffer and needs no more alignment than
//!   `usize` (otherwise the closure is shared instead), so the read is
//!   in bounds and aligned;
//! - writes the closure into the buffer, so the bytes read back are a
//!   valid value of the type the function pointer was made for;
//! - requires `F: Copy`, so a bitwise copy of the buffer (cloning the
//!   body, as every pipeline the step is added to does) is a valid copy of
//!   the closure, and no copy needs dropping (a `Copy` type has no drop
//!   glue);
//! - (by the same bound) `F` holds no `UnsafeCell` inline, as no `Copy`
//!   type does, so calling it through a shared reference into the buffer
//!   mutates nothing the buffer's owner could see change;
//! - requires `F: Send + Sync + 'static`, so the body may be sent to and
//!   shared by the run's workers (which the buffer's own `Send` and `Sync`
//!   would otherwise claim for any type) and outlives nothing it borrows.
#![allow(unsafe_code)]

use std::fmt;
use std::mem::{MaybeUninit, align_of, size_of};
use std::sync::Arc;

use super::context::StepContext;
use crate::error::BoxError;

type Buffer = [MaybeUninit<usize>; 2];

/// A step's code behind a pointer, shared.
type SharedFn = dyn Fn(&mut StepContext<'_>) -> Result<(), BoxError> + Send + Sync;

/// A step's code: a closure shared by reference count, or one small enough
/// and `Copy`, kept inline (see [`Step::body`](super::Step::body)).
#[derive(Clone)]
pub struct StepBody(Repr);

#[derive(Clone)]
enum Repr {
    Shared(Arc<SharedFn>),
    Copied {
        data: Buffer,
        call: unsafe fn(&Buffer, &mut StepContext<'_>) -> Result<(), BoxError>,
    },
}

impl StepBody {
    /// `f`, shared: every pipeline the step is in calls the one closure.
    pub fn shared(
        f: impl Fn(&mut StepContext<'_>) -> Result<(), BoxError> + Send + Sync + 'static,
    ) -> Self {
        StepBody(Repr::Shared(Arc::new(f)))
    }

    /// `f`, copied into the body if it is at most two words (each pipeline
    /// then keeps its own copy, inline: see the module docs), shared if it
    /// is larger.
    pub fn copied<F>(f: F) -> Self
    where
        F: Fn(&mut StepContext<'_>) -> Result<(), BoxError> + Copy + Send + Sync + 'static,
    {
        if size_of::<F>() > size_of::<Buffer>() || align_of::<F>() > align_of::<Buffer>() {
            return Self::shared(f);
        }
        let mut data: Buffer = [MaybeUninit::uninit(); 2];
        // SAFETY: `F` fits the buffer and its alignment (checked above).
        unsafe { data.as_mut_ptr().cast::<F>().write(f) };
        StepBody(Repr::Copied {
            data,
            call: call_copied::<F>,
        })
    }

    /// Runs the code.
    ///
    /// # Errors
    /// The step's own.
    #[inline]
    pub fn call(&self, ctx: &mut StepContext<'_>) -> Result<(), BoxError> {
        match &self.0 {
            Repr::Shared(f) => f(ctx),
            // SAFETY: `call` was made for the type whose value `data`
            // holds (only `copied` makes a `Copied`).
            Repr::Copied { data, call } => unsafe { call(data, ctx) },
        }
    }

    /// Whether the closure is kept inline.
    pub fn is_copied(&self) -> bool {
        matches!(self.0, Repr::Copied { .. })
    }
}

/// Calls the `F` whose bytes `data` holds.
///
/// # Safety
/// `data` must hold a value of `F` written by [`StepBody::copied`] (or a
/// bitwise copy of one: `F` is `Copy`).
unsafe fn call_copied<F>(data: &Buffer, ctx: &mut StepContext<'_>) -> Result<(), BoxError>
where
    F: Fn(&mut StepContext<'_>) -> Result<(), BoxError>,
{
    // SAFETY: the caller's contract; the buffer is aligned for `F`.
    let f = unsafe { &*data.as_ptr().cast::<F>() };
    f(ctx)
}

impl fmt::Debug for StepBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            Repr::Shared(_) => "StepBody::Shared",
            Repr::Copied { .. } => "StepBody::Copied",
        })
    }
}
