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
//! back as that type. Only [`StepBody::copied`] makes one (through
//! `RawCall::holding`, which writes the value and pairs it with its
//! reader), and it:
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
//!
//! # A run's raw call
//! A run calls each step through a [`RawCall`]: the same two words and
//! function pointer, made of any body or step ([`RawCall::of_body`],
//! [`RawCall::of_arc`]). For a copied body it is the body itself; for a
//! shared body or a step without one, the two words are a pointer to the
//! closure or the step, which the `RawCall` does not own, so calling it is
//! `unsafe`: its maker keeps the body or step alive for as long as it
//! calls it (the pipeline's catalog keeps both side by side). The pointer
//! is written into the buffer as a value of its own type and read back as
//! that type, as a copied closure is, so no layout of fat pointers is
//! assumed. What it points to is [`Callable`], so `Send + Sync`: sharing
//! the pointer with the run's workers shares nothing that may not be.
#![allow(unsafe_code)]

use std::fmt;
use std::mem::{MaybeUninit, align_of, size_of};
use std::sync::Arc;

use super::context::StepContext;
use crate::error::BoxError;

type Buffer = [MaybeUninit<usize>; 2];

/// A step's code behind a pointer, shared.
type SharedFn = dyn Fn(&mut StepContext<'_>) -> Result<(), BoxError> + Send + Sync;

/// What calls a [`RawCall`]'s buffer.
type CallFn = unsafe fn(&Buffer, &mut StepContext<'_>) -> Result<(), BoxError>;

/// A step's code: a closure shared by reference count, or one small enough
/// and `Copy`, kept inline (see [`Step::body`](super::Step::body)).
#[derive(Clone)]
pub struct StepBody(Repr);

#[derive(Clone)]
enum Repr {
    Shared(Arc<SharedFn>),
    /// Made only by [`StepBody::copied`], so its buffer holds the closure.
    Copied(RawCall),
}

/// Code a [`RawCall`] can point to: a shared closure, or a step (whose
/// `run` it calls), each behind an `Arc`.
pub(crate) trait Callable: Send + Sync {
    /// Runs the code.
    ///
    /// # Errors
    /// The step's own.
    fn call(&self, ctx: &mut StepContext<'_>) -> Result<(), BoxError>;
}

impl Callable for SharedFn {
    fn call(&self, ctx: &mut StepContext<'_>) -> Result<(), BoxError> {
        self(ctx)
    }
}

/// A call of a step's code: two words and the function that reads them
/// (see the module docs). Copying it copies no closure it points to.
#[derive(Clone, Copy)]
pub(crate) struct RawCall {
    data: Buffer,
    call: CallFn,
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
        match RawCall::holding(f, call_copied::<F>) {
            Some(raw) => StepBody(Repr::Copied(raw)),
            None => Self::shared(f),
        }
    }

    /// Runs the code.
    ///
    /// # Errors
    /// The step's own.
    #[inline]
    pub fn call(&self, ctx: &mut StepContext<'_>) -> Result<(), BoxError> {
        match &self.0 {
            Repr::Shared(f) => f(ctx),
            // SAFETY: a copied body's buffer holds its closure, which it
            // owns (it is `Copy`: nothing else to keep alive).
            Repr::Copied(raw) => unsafe { raw.call(ctx) },
        }
    }

    /// Whether the closure is kept inline.
    pub fn is_copied(&self) -> bool {
        matches!(self.0, Repr::Copied(_))
    }
}

impl RawCall {
    /// A call that fails, for where a call is wanted before there is code
    /// (the catalog's record past its last step, which holds only where
    /// that step's inputs and outputs end).
    pub(crate) const NONE: RawCall = RawCall {
        data: [MaybeUninit::uninit(); 2],
        call: call_none,
    };

    /// `value` in a buffer, with `call` to read it back, if it fits.
    fn holding<T: Copy>(value: T, call: CallFn) -> Option<RawCall> {
        if size_of::<T>() > size_of::<Buffer>() || align_of::<T>() > align_of::<Buffer>() {
            return None;
        }
        let mut data: Buffer = [MaybeUninit::uninit(); 2];
        // SAFETY: `T` fits the buffer and its alignment (checked above).
        unsafe { data.as_mut_ptr().cast::<T>().write(value) };
        Some(RawCall { data, call })
    }

    /// A call of `body`, valid while `body` (or a clone of it) lives.
    pub(crate) fn of_body(body: &StepBody) -> RawCall {
        match &body.0 {
            Repr::Copied(raw) => *raw,
            Repr::Shared(f) => RawCall::of_arc(f),
        }
    }

    /// A call of the code `code` points to (a shared closure, a step),
    /// valid while `code` (or a clone of it) lives.
    pub(crate) fn of_arc<T: Callable + ?Sized>(code: &Arc<T>) -> RawCall {
        // Checked when this is compiled for `T`: a pointer, thin or wide,
        // fits the buffer, so `holding` cannot refuse it below.
        const {
            assert!(
                size_of::<*const T>() <= size_of::<Buffer>()
                    && align_of::<*const T>() <= align_of::<Buffer>()
            );
        }
        RawCall::holding(Arc::as_ptr(code), call_pointed::<T>)
            .expect("a pointer fits two words (asserted at compile time above)")
    }

    /// Runs the code.
    ///
    /// # Safety
    /// The body or step this call was made of is alive (a copied body's
    /// call needs nothing: it holds its closure).
    ///
    /// # Errors
    /// The step's own.
    #[inline]
    pub(crate) unsafe fn call(&self, ctx: &mut StepContext<'_>) -> Result<(), BoxError> {
        // SAFETY: `call` was made for the type whose value `data` holds
        // (only `holding` makes a `RawCall`, with the two together), and
        // what that value points to is alive (the caller's contract).
        unsafe { (self.call)(&self.data, ctx) }
    }
}

/// Calls the `F` whose bytes `data` holds.
///
/// # Safety
/// `data` must hold a value of `F` written by [`RawCall::holding`] (or a
/// bitwise copy of one: `F` is `Copy`).
unsafe fn call_copied<F>(data: &Buffer, ctx: &mut StepContext<'_>) -> Result<(), BoxError>
where
    F: Fn(&mut StepContext<'_>) -> Result<(), BoxError>,
{
    // SAFETY: the caller's contract; the buffer is aligned for `F`.
    let f = unsafe { &*data.as_ptr().cast::<F>() };
    f(ctx)
}

/// Calls the `T` that `data` points to.
///
/// # Safety
/// `data` must hold a `*const T` written by [`RawCall::holding`], to a
/// value that is alive.
unsafe fn call_pointed<T: Callable + ?Sized>(
    data: &Buffer,
    ctx: &mut StepContext<'_>,
) -> Result<(), BoxError> {
    // SAFETY: the caller's contract.
    let code = unsafe { &**data.as_ptr().cast::<*const T>() };
    code.call(ctx)
}

/// [`RawCall::NONE`]'s function.
fn call_none(_: &Buffer, _: &mut StepContext<'_>) -> Result<(), BoxError> {
    Err("no step is here".into())
}

impl fmt::Debug for StepBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            Repr::Shared(_) => "StepBody::Shared",
            Repr::Copied(_) => "StepBody::Copied",
        })
    }
}
