//! What a run keeps in an artifact's slot: a [`Value`] (a shared value,
//! or a small scalar held inline) in a [`Slot`] written once.
//!
//! Most artifacts are shared by reference count ([`Artifact`]), so that
//! the steps reading one never copy it. A scalar (a count, a flag, a
//! metric) is cheaper to copy than to share: it is kept in the slot
//! itself, which spares a run an allocation and a free per such output.
//!
//! # Layout: two words
//! A run's slots are the largest array it reads at random (a step reads
//! its inputs wherever their producers put them), so a slot is two words
//! and no more: a pointer to a static table of its value's operations
//! ([`Ops`], one per type and representation) and one word of data. The
//! table is the value's tag (its `TypeId` and how to read, share, clone
//! and drop the word), and in a [`Slot`] it is the write-once state too:
//! null while the slot is empty, the table once it is full. The word
//! holds:
//! - an inline scalar's bytes, for the scalar types listed below that fit
//!   a pointer (chosen by `TypeId`, which the compiler folds for each
//!   concrete type, so [`Value::new`] and [`Value::get`] cost a compare);
//! - a typed `Arc<T>`'s thin pointer, for any other `T` a step writes;
//! - a thin pointer to an `Arc<Arc<dyn Any>>`, for a value that arrives
//!   already shared and typed only at run time (a run-time input, an
//!   artifact loaded from the on-disk cache): its `Arc<dyn Any>` is two
//!   words, and such values come once per run, not once per step.
//!
//! A typed read compares the table's `TypeId` with the one asked for; only
//! an inline or typed table of `T` carries `T`'s id, and which of the two a
//! `T` gets is decided by `T` alone ([`inline`]), so a match says how to
//! read the word. Any other table (a run-time-typed value, or a wrong
//! type) is read through its `dyn Any`.
//!
//! # Why a slot is sound: one writer
//! A slot is written by one thread, never two at once, and that is its
//! caller's promise ([`Slot::set`] is `unsafe`), kept by the DAG engine: a
//! slot holds one run-time input, put there before any step starts, or
//! one output of one step (a plan refuses an artifact produced twice),
//! written only while the ready queue visits that step, once per run, on
//! one thread (its attempts, retries and cache hits included, in turn).
//! So a write needs no compare-and-swap, a read-modify-write that waits
//! for the slot's cache line (it was a third of a step's time in a large
//! random DAG): it loads the table pointer (`Relaxed`: the empty slot's
//! null was stored before the run started this step, which the pool's
//! spawn and the countdown order before the visit, and any table since
//! was stored by this thread, so it sees its own earlier write and refuses
//! a second), writes the word, and stores the table with `Release`. A
//! reader reads the word only after an `Acquire` load sees a table, which
//! synchronises with that store, so the word's bytes are visible to it;
//! before that it sees null and reads nothing. Once full, the slot is not
//! written again while shared, except by its writer's [`Slot::clear`] of
//! what a failed attempt wrote, while no one reads it; `&mut self` takes
//! its value out. A full slot is read as a `&Value`: both are `repr(C)`
//! pairs of a table field (`AtomicPtr<Ops>` has the size and bit validity
//! of `*mut Ops`, as `&'static Ops` does, and an alignment no smaller) and
//! a word (`UnsafeCell` has its content's layout), checked at compile
//! time below, and nothing writes either field while that reference
//! lives.
#![allow(unsafe_code)]

use std::any::{Any, TypeId};
use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::ptr;
use std::sync::Arc;
use std::sync::atomic::{AtomicPtr, Ordering};

/// A value exchanged between steps, shared by reference count: never
/// copied between the steps that read it.
pub type Artifact = Arc<dyn Any + Send + Sync>;

/// A value's one word of data: an inline scalar's bytes or a thin pointer.
type Word = MaybeUninit<*const ()>;

/// What a value's type and representation do with its word. Each function
/// is given a word made by the constructor that chose this table.
struct Ops {
    /// The type a typed read finds in the word (a marker's for a value
    /// typed only at run time, which no read asks for).
    type_id: TypeId,
    /// The value, typed at run time.
    as_any: for<'a> unsafe fn(&'a Word) -> &'a (dyn Any + Send + Sync),
    /// The value, shared.
    to_artifact: unsafe fn(&Word) -> Artifact,
    /// A word holding a copy of the value (or another reference to it).
    clone: unsafe fn(&Word) -> Word,
    /// Releases the word's value.
    drop: unsafe fn(&mut Word),
}

/// Whether a `T` is kept inline: a scalar type listed below whose bytes fit
/// the word. Folded by the compiler for each `T`.
#[inline(always)]
fn inline<T: 'static>() -> bool {
    size_of::<T>() <= size_of::<Word>() && align_of::<T>() <= align_of::<Word>() && is_scalar::<T>()
}

macro_rules! scalars {
    ($($ty:ty),* $(,)?) => {
        /// Whether `T` is one of the scalar types (all `Copy`, none with
        /// drop glue) kept inline where they fit.
        #[inline(always)]
        fn is_scalar<T: 'static>() -> bool {
            let id = TypeId::of::<T>();
            false $(|| id == TypeId::of::<$ty>())*
        }
    };
}

scalars!(
    (),
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    usize,
    i8,
    i16,
    i32,
    i64,
    isize,
    f32,
    f64
);

/// The table of a scalar `T` kept in the word's bytes.
struct Inline<T>(PhantomData<T>);

impl<T: Any + Send + Sync> Inline<T> {
    /// Only ever chosen where [`inline::<T>`](inline) holds: `T` fits the
    /// word and is `Copy` without drop glue, so a bitwise copy is a clone
    /// and nothing is released.
    const OPS: &'static Ops = &Ops {
        type_id: TypeId::of::<T>(),
        as_any: |word| {
            // SAFETY: the word holds a `T` in its first bytes (`Value::new`).
            unsafe { &*word.as_ptr().cast::<T>() }
        },
        to_artifact: |word| {
            // SAFETY: as above; `T` is `Copy`, so reading it out leaves the
            // word's copy valid.
            Arc::new(unsafe { word.as_ptr().cast::<T>().read() })
        },
        clone: |word| *word,
        drop: |_| {},
    };
}

/// The table of a `T` shared as an `Arc<T>`, its thin pointer in the word.
struct Shared<T>(PhantomData<T>);

impl<T: Any + Send + Sync> Shared<T> {
    const OPS: &'static Ops = &Ops {
        type_id: TypeId::of::<T>(),
        as_any: |word| {
            // SAFETY: the word holds `Arc::into_raw` of an `Arc<T>` whose
            // count it owns one of, alive while the word is.
            unsafe { &*word.assume_init().cast::<T>() }
        },
        to_artifact: |word| {
            // SAFETY: as above; the new `Arc` takes a count of its own.
            unsafe {
                let pointer = word.assume_init().cast::<T>();
                Arc::increment_strong_count(pointer);
                Arc::from_raw(pointer)
            }
        },
        clone: |word| {
            // SAFETY: as above; the copy of the word owns the new count.
            unsafe { Arc::increment_strong_count(word.assume_init().cast::<T>()) };
            *word
        },
        drop: |word| {
            // SAFETY: as above; the word gives up its count, once.
            drop(unsafe { Arc::from_raw(word.assume_init().cast::<T>()) })
        },
    };
}

/// The type id of a value typed only at run time: private, so no typed
/// read asks for it.
struct RunTimeTyped;

/// The table of an artifact typed only at run time: the word holds an
/// `Arc<Artifact>`'s thin pointer.
const ERASED: &Ops = &Ops {
    type_id: TypeId::of::<RunTimeTyped>(),
    as_any: |word| {
        // SAFETY: the word holds `Arc::into_raw` of an `Arc<Artifact>`
        // whose count it owns one of, alive while the word is.
        unsafe { &**word.assume_init().cast::<Artifact>() }
    },
    to_artifact: |word| {
        // SAFETY: as above.
        Arc::clone(unsafe { &*word.assume_init().cast::<Artifact>() })
    },
    // The word is a shared `Arc<Artifact>`'s: counted and released as one.
    clone: Shared::<Artifact>::OPS.clone,
    drop: Shared::<Artifact>::OPS.drop,
};

/// An artifact: its table and its word (see the module docs).
#[repr(C)]
pub(crate) struct Value {
    ops: &'static Ops,
    word: Word,
}

// SAFETY: every constructor takes a `Send + Sync` value (a `T` bounded so,
// or an `Artifact`), and the word only holds it or a reference count of it.
unsafe impl Send for Value {}
// SAFETY: as above.
unsafe impl Sync for Value {}

impl Value {
    /// `value` in a slot: inline if it is one of the scalar types.
    #[inline]
    pub(crate) fn new<T: Any + Send + Sync>(value: T) -> Value {
        let mut word = Word::uninit();
        if inline::<T>() {
            // SAFETY: `inline` checked that a `T` fits the word and its
            // alignment.
            unsafe { word.as_mut_ptr().cast::<T>().write(value) };
            Value {
                ops: Inline::<T>::OPS,
                word,
            }
        } else {
            word.write(Arc::into_raw(Arc::new(value)).cast());
            Value {
                ops: Shared::<T>::OPS,
                word,
            }
        }
    }

    /// The value as a `T`, if it is one.
    #[inline]
    pub(crate) fn get<T: Any>(&self) -> Option<&T> {
        if self.ops.type_id == TypeId::of::<T>() {
            // SAFETY: only `Inline<T>` and `Shared<T>` carry `T`'s id (and
            // the private `RunTimeTyped`'s, which no code of the crate asks
            // for; read as one, the word would be a zero-sized type behind a
            // non-null pointer), and `Value::new` chose between the two by
            // `inline::<T>()`.
            Some(unsafe {
                if inline::<T>() {
                    &*self.word.as_ptr().cast::<T>()
                } else {
                    &*self.word.assume_init().cast::<T>()
                }
            })
        } else {
            self.as_any().downcast_ref()
        }
    }

    /// The value, typed only at run time.
    #[inline]
    pub(crate) fn as_any(&self) -> &(dyn Any + Send + Sync) {
        // SAFETY: the table was chosen with the word (see `Ops`).
        unsafe { (self.ops.as_any)(&self.word) }
    }

    /// The value, shared (an inline one is put in an `Arc` now).
    pub(crate) fn to_artifact(&self) -> Artifact {
        // SAFETY: as above.
        unsafe { (self.ops.to_artifact)(&self.word) }
    }
}

impl Clone for Value {
    #[inline]
    fn clone(&self) -> Self {
        Value {
            ops: self.ops,
            // SAFETY: as above.
            word: unsafe { (self.ops.clone)(&self.word) },
        }
    }
}

impl Drop for Value {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: as above; the value is not used again.
        unsafe { (self.ops.drop)(&mut self.word) }
    }
}

impl From<Artifact> for Value {
    fn from(artifact: Artifact) -> Self {
        Value {
            ops: ERASED,
            word: Word::new(Arc::into_raw(Arc::new(artifact)).cast()),
        }
    }
}

// A `&Slot` is read as a `&Value` (see the module docs).
const _: () = assert!(
    std::mem::offset_of!(Slot, ops) == std::mem::offset_of!(Value, ops)
        && std::mem::offset_of!(Slot, word) == std::mem::offset_of!(Value, word)
        && size_of::<Slot>() == size_of::<Value>()
        && align_of::<Slot>() >= align_of::<Value>()
);

/// An artifact's slot in a run: written at most once, read by reference
/// from any thread once written, never waited on (see the module docs).
#[repr(C)]
pub(crate) struct Slot {
    /// Null (empty) or the value's table (full).
    ops: AtomicPtr<Ops>,
    word: UnsafeCell<Word>,
}

// SAFETY: a slot holds a `Value` (`Send + Sync`), written by one thread
// and then only read through shared references (see the module docs).
unsafe impl Sync for Slot {}
// SAFETY: as above.
unsafe impl Send for Slot {}

impl Slot {
    /// An empty slot.
    #[inline]
    pub(crate) const fn new() -> Self {
        Slot {
            ops: AtomicPtr::new(ptr::null_mut()),
            word: UnsafeCell::new(Word::uninit()),
        }
    }

    /// Writes `value` if the slot is empty; gives it back otherwise.
    ///
    /// # Safety
    /// No other thread writes this slot meanwhile, nor ever did while it
    /// was shared: a slot has one writer (see the module docs).
    #[inline]
    pub(crate) unsafe fn set(&self, value: Value) -> Result<(), Value> {
        if !self.ops.load(Ordering::Relaxed).is_null() {
            return Err(value);
        }
        let value = ManuallyDrop::new(value);
        // SAFETY: this thread is the slot's one writer (the caller's
        // promise), and no reader reads the word before a table is stored.
        unsafe { *self.word.get() = value.word };
        self.ops
            .store(ptr::from_ref(value.ops).cast_mut(), Ordering::Release);
        Ok(())
    }

    /// Empties the slot, dropping its value: what a failed attempt wrote.
    ///
    /// # Safety
    /// This thread is the slot's one writer, and no other thread reads the
    /// slot meanwhile (a step's outputs during its visit: its dependents
    /// start only after it, the result only after the run).
    pub(crate) unsafe fn clear(&self) {
        // SAFETY: the caller's promise is `empty`'s.
        drop(unsafe { self.empty() });
    }

    /// The value, taken out; the slot left empty.
    ///
    /// # Safety
    /// As [`clear`](Self::clear): no other thread writes or reads the slot
    /// meanwhile.
    unsafe fn empty(&self) -> Option<Value> {
        // `Relaxed`: whoever reads the slot next synchronises with this
        // thread first (the countdown, the run's join, or `&mut`).
        // A load and a store, not a swap: no other thread has the slot, and
        // a locked swap per slot would cost every dropped result.
        let ops = self.ops.load(Ordering::Relaxed);
        if ops.is_null() {
            return None;
        }
        self.ops.store(ptr::null_mut(), Ordering::Relaxed);
        Some(Value {
            // SAFETY: a full slot's pointer is a `&'static Ops`, and its
            // word was written with it; no reference to the value is left
            // (the caller's promise), and the slot no longer holds it.
            ops: unsafe { &*ops },
            word: unsafe { *self.word.get() },
        })
    }

    /// The value, if it was written.
    #[inline]
    pub(crate) fn get(&self) -> Option<&Value> {
        if self.ops.load(Ordering::Acquire).is_null() {
            return None;
        }
        // SAFETY: a table was stored (with release) after the word was
        // written, neither is written again while `self` is shared, and a
        // `Slot` has a `Value`'s layout (see the module docs).
        Some(unsafe { &*ptr::from_ref(self).cast::<Value>() })
    }

    /// The value, taken out of the slot.
    pub(crate) fn into_inner(mut self) -> Option<Value> {
        self.take()
    }

    fn take(&mut self) -> Option<Value> {
        // SAFETY: `&mut self`: no other thread has the slot.
        unsafe { self.empty() }
    }
}

impl From<Value> for Slot {
    fn from(value: Value) -> Self {
        let value = ManuallyDrop::new(value);
        Slot {
            ops: AtomicPtr::new(ptr::from_ref(value.ops).cast_mut()),
            word: UnsafeCell::new(value.word),
        }
    }
}

impl Clone for Slot {
    fn clone(&self) -> Self {
        match self.get() {
            Some(value) => Slot::from(value.clone()),
            None => Slot::new(),
        }
    }
}

impl Default for Slot {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        drop(self.take());
    }
}

impl fmt::Debug for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.get() {
            Some(_) => "Slot(<full>)",
            None => "Slot(<empty>)",
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    #[test]
    fn a_slot_and_a_value_are_two_words() {
        assert_eq!(size_of::<Slot>(), 2 * size_of::<usize>());
        assert_eq!(size_of::<Value>(), size_of::<Slot>());
        assert_eq!(size_of::<Option<Value>>(), size_of::<Value>());
    }

    #[test]
    fn scalars_are_inline_and_everything_reads_back() {
        // An inline value is shared by a new `Arc` each time; a shared one
        // is the same allocation.
        let shared_twice = |v: Value| Arc::ptr_eq(&v.to_artifact(), &v.to_artifact());
        assert!(!shared_twice(Value::new(7u64)));
        assert!(!shared_twice(Value::new(1.5f64)));
        assert!(shared_twice(Value::new(vec![1u8])));
        assert!(shared_twice(Value::new([0u64; 2])), "not a scalar");
        assert_eq!(Value::new(7u64).get::<u64>(), Some(&7));
        assert_eq!(Value::new(7u64).get::<u32>(), None);
        assert_eq!(Value::new(7u64).get::<RunTimeTyped>().map(|_| ()), None);
        let erased = Value::from(Arc::new(7u64) as Artifact);
        assert_eq!(erased.get::<RunTimeTyped>().map(size_of_val), Some(0));
        assert_eq!(Value::new(true).clone().get::<bool>(), Some(&true));
        assert_eq!(
            Value::new("text".to_owned())
                .get::<String>()
                .map(String::as_str),
            Some("text")
        );
        assert_eq!(Value::new(vec![1u8]).get::<Vec<u16>>(), None);
        let shared = Value::new(-3i16).to_artifact();
        assert_eq!(shared.downcast_ref::<i16>(), Some(&-3));
        assert_eq!(Value::new(()).as_any().downcast_ref::<()>(), Some(&()));
        assert_eq!(Value::new('x').as_any().downcast_ref::<char>(), Some(&'x'));
    }

    /// A run-time-typed artifact reads back by its type, through `dyn
    /// Any`, and shares the very allocation it came in.
    #[test]
    fn an_artifact_typed_at_run_time_is_the_same_allocation() {
        let artifact: Artifact = Arc::new(41u64);
        let value = Value::from(Arc::clone(&artifact));
        assert_eq!(value.get::<u64>(), Some(&41));
        assert_eq!(value.get::<u32>(), None);
        assert!(Arc::ptr_eq(&value.clone().to_artifact(), &artifact));
        drop(value);
        assert_eq!(Arc::strong_count(&artifact), 1);
    }

    /// Every representation drops its value exactly once, however many
    /// clones were made and whether it went through a slot.
    #[test]
    fn values_are_dropped_once_through_clones_and_slots() {
        static DROPS: AtomicUsize = AtomicUsize::new(0);
        struct Counted(#[allow(dead_code)] u64);
        impl Drop for Counted {
            fn drop(&mut self) {
                DROPS.fetch_add(1, Ordering::SeqCst);
            }
        }
        let typed = Value::new(Counted(1));
        let erased = Value::from(Arc::new(Counted(2)) as Artifact);
        let copies = [typed.clone(), erased.clone(), typed.clone()];
        let slot = Slot::from(typed);
        assert!(slot.get().and_then(Value::get::<Counted>).is_some());
        // SAFETY: this thread is the slot's only writer.
        assert!(unsafe { slot.set(erased) }.is_err(), "a full slot refuses");
        assert_eq!(DROPS.load(Ordering::SeqCst), 0);
        drop(copies);
        assert_eq!(DROPS.load(Ordering::SeqCst), 1, "the erased one");
        // A test: the slot was filled above, so it is full here.
        let taken = slot.into_inner().expect("full");
        assert_eq!(DROPS.load(Ordering::SeqCst), 1);
        drop(taken);
        assert_eq!(DROPS.load(Ordering::SeqCst), 2);
        assert!(Slot::new().into_inner().is_none());
    }

    /// One thread writes slots while others read them: every reader sees
    /// nothing or the whole value, and the writer's second write of a
    /// slot is refused.
    #[test]
    fn readers_see_a_slot_empty_or_whole_while_its_writer_writes() {
        let slots: Vec<Slot> = (0..2_000).map(|_| Slot::new()).collect();
        std::thread::scope(|s| {
            s.spawn(|| {
                for (t, slot) in slots.iter().enumerate() {
                    let value = if t % 2 == 0 {
                        Value::new(vec![t; 64])
                    } else {
                        Value::from(Arc::new(vec![t; 64]) as Artifact)
                    };
                    // SAFETY: this thread is each slot's only writer.
                    unsafe {
                        assert!(slot.set(value).is_ok());
                        assert!(slot.set(Value::new(0u8)).is_err());
                    }
                }
            });
            for _ in 0..3 {
                s.spawn(|| {
                    for (t, slot) in slots.iter().enumerate().rev() {
                        if let Some(v) = slot.get().and_then(Value::get::<Vec<usize>>) {
                            assert!(v.len() == 64 && v.iter().all(|&x| x == t));
                        }
                    }
                });
            }
        });
        assert!(slots.iter().all(|slot| slot.get().is_some()));
    }
}
