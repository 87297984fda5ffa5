//! [`RunBuffers`]: a run's per-step state (artifact slots, fingerprints,
//! cache keys, records, the ready queue's countdown), and [`Spare`], where
//! a plan keeps the last result's buffers for its next run.
//!
//! # Why recycle
//! A run's per-step state is about 60 bytes a step: 600 KB at 10,000
//! steps, allocated as the run starts and freed with its result. Freed
//! blocks that large go back to the system or stay in the process at
//! glibc's discretion (its trim threshold follows the largest block freed
//! so far), and when they went back the next run page-faults every page in
//! again: on a 10,000-step chain of no-op steps that was a third of a
//! rerun's time (6,000 page faults), and whether it happened depended on
//! unrelated allocations earlier in the process. A dropped result gives its
//! buffers to its plan instead; the plan's next run empties and refills
//! them in place, writing memory the process already has, whatever the
//! allocator decides.
//!
//! A result's artifacts are dropped as it is (only the buffers' memory is
//! kept, never a value), so recycling holds no artifact alive. Runs of one
//! plan that overlap find the spare taken and allocate their own; of two
//! results dropped, the spare keeps one set.

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::AtomicU32;

use crate::incremental::fingerprint::Fingerprint;
use crate::record::RawRecord;
use crate::slot::Slot;
use crate::sync::lock;
use crate::write_once::WriteOnce;

/// A run's per-step state, in flat arrays indexed by slot or step.
#[derive(Default)]
pub(crate) struct RunBuffers {
    /// Every artifact slot, written once by its producer (or seeded from a
    /// run-time input).
    pub slots: Vec<Slot>,
    /// Each slot's content fingerprint, where the pipeline has a cache
    /// (empty otherwise).
    pub fingerprints: Vec<WriteOnce<Fingerprint>>,
    /// Each step's cache key, where the pipeline has a cache (empty
    /// otherwise).
    pub keys: Vec<WriteOnce<Fingerprint>>,
    /// One record per step.
    pub records: Vec<RawRecord>,
    /// The ready queue's countdown (see [`dag::run`](crate::dag::run)),
    /// kept only to be recycled: a result never reads it.
    pub countdown: Vec<AtomicU32>,
}

// A result's clone copies what it reads; the countdown is the run's.
impl Clone for RunBuffers {
    fn clone(&self) -> Self {
        RunBuffers {
            slots: self.slots.clone(),
            fingerprints: self.fingerprints.clone(),
            keys: self.keys.clone(),
            records: self.records.clone(),
            countdown: Vec::new(),
        }
    }
}

impl RunBuffers {
    /// Empties every buffer in place (dropping the artifacts), keeping the
    /// memory.
    fn clear(&mut self) {
        self.slots.clear();
        self.fingerprints.clear();
        self.keys.clear();
        self.records.clear();
        self.countdown.clear();
    }

    /// Refills emptied buffers for a run of `slots` slots and `steps`
    /// steps, with fingerprints and keys where `cached`; the countdown is
    /// refilled by the ready queue itself.
    fn fill(&mut self, slots: usize, steps: usize, cached: bool) {
        self.slots.extend((0..slots).map(|_| Slot::new()));
        if cached {
            self.fingerprints
                .extend((0..slots).map(|_| WriteOnce::new()));
            self.keys.extend((0..steps).map(|_| WriteOnce::new()));
        }
        self.records
            .extend((0..steps).map(|_| RawRecord::default()));
    }
}

/// A plan's buffers, given back by the last result dropped and taken by
/// the next run.
#[derive(Default)]
pub(crate) struct Spare(Mutex<Option<RunBuffers>>);

impl fmt::Debug for Spare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `try_lock`: a spare being given or taken is not worth a wait.
        let kept = self.0.try_lock().is_ok_and(|spare| spare.is_some());
        f.debug_struct("Spare").field("kept", &kept).finish()
    }
}

impl Spare {
    /// Buffers for a run of `slots` slots and `steps` steps (with
    /// fingerprints and keys where `cached`): the spare ones refilled where
    /// there are some, new ones otherwise.
    pub fn take(&self, slots: usize, steps: usize, cached: bool) -> RunBuffers {
        let mut buffers = lock(&self.0).take().unwrap_or_default();
        buffers.fill(slots, steps, cached);
        buffers
    }

    /// Keeps `buffers`' memory for the next run, their contents dropped
    /// now; where a spare set is already kept, they are freed instead.
    pub fn give(&self, mut buffers: RunBuffers) {
        buffers.clear();
        let mut spare = lock(&self.0);
        if spare.is_none() {
            *spare = Some(buffers);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::slot::Value;
    use std::sync::atomic::Ordering;

    use super::*;

    #[test]
    fn a_given_back_set_is_taken_again_empty_and_in_the_same_memory() {
        let spare = Spare::default();
        let mut used = spare.take(3, 2, true);
        used.slots[1] = Slot::from(Value::new(7_u64));
        let _ = used.keys[0].set(Fingerprint::default());
        used.records[1].state.store(5, Ordering::Relaxed);
        used.countdown.push(AtomicU32::new(1));
        let (slots, records) = (used.slots.as_ptr(), used.records.as_ptr());
        spare.give(used);

        let again = spare.take(3, 2, true);
        assert_eq!(
            (again.slots.as_ptr(), again.records.as_ptr()),
            (slots, records)
        );
        assert_eq!((again.slots.len(), again.fingerprints.len()), (3, 3));
        assert_eq!((again.keys.len(), again.records.len()), (2, 2));
        assert!(again.slots.iter().all(|s| s.get().is_none()));
        assert!(again.keys.iter().all(|k| k.get().is_none()));
        assert!(
            again
                .records
                .iter()
                .all(|r| r.state.load(Ordering::Relaxed) == 0)
        );
        assert!(again.countdown.is_empty(), "the ready queue refills it");

        // Taken, the spare is empty: an overlapping run allocates its own.
        let other = spare.take(3, 2, false);
        assert_ne!(other.slots.as_ptr(), slots);
        assert!(other.fingerprints.is_empty() && other.keys.is_empty());
    }
}
