//! [`Clock`]: the clock a run times its steps with, read once per step.
//!
//! quanta calibrates the TSC against the OS clock once per process and
//! converts ticks to nanoseconds; where the TSC is not reliable it reads
//! the OS clock instead. Its `raw` read is a call that first checks which
//! of the two it uses. A run reads the clock once per step (a step that
//! follows another on the same worker starts when that one ended), and
//! on a chain of no-op steps that call was a measurable part of a step's
//! cost, so where quanta's raw reading is the TSC, the run reads the TSC
//! itself, inline, and still has quanta convert the ticks.
//!
//! Whether quanta's raw reading is the TSC is checked, not assumed: a
//! reading of quanta's taken between two readings of the TSC must fall
//! between them, three times in a row (an OS clock's nanoseconds cannot
//! keep doing that). Otherwise every read goes through quanta.
#![allow(unsafe_code)]

use std::sync::OnceLock;

/// The process's step clock (see the module docs).
pub(crate) struct Clock {
    quanta: quanta::Clock,
    /// Whether quanta's raw reading is this CPU's TSC, read inline here.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    tsc: bool,
}

impl Clock {
    /// The process's clock, calibrated the first time it is asked for.
    pub(crate) fn get() -> &'static Clock {
        static CLOCK: OnceLock<Clock> = OnceLock::new();
        CLOCK.get_or_init(|| {
            let quanta = quanta::Clock::new();
            let tsc = (0..3).all(|_| reads_the_tsc(&quanta));
            Clock { quanta, tsc }
        })
    }

    /// The time now, in raw ticks (only differences mean anything).
    #[inline(always)]
    pub(crate) fn raw(&self) -> u64 {
        #[cfg(target_arch = "x86_64")]
        if self.tsc {
            return tsc();
        }
        self.quanta.raw()
    }

    /// The nanoseconds from raw ticks `start` to `end`.
    pub(crate) fn delta_as_nanos(&self, start: u64, end: u64) -> u64 {
        self.quanta.delta_as_nanos(start, end)
    }
}

/// Whether a raw reading of `quanta` falls between two TSC readings.
fn reads_the_tsc(quanta: &quanta::Clock) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let before = tsc();
        let raw = quanta.raw();
        let after = tsc();
        before <= raw && raw <= after
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = quanta;
        false
    }
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn tsc() -> u64 {
    // SAFETY: `rdtsc` reads a counter and touches no memory; every x86-64
    // CPU has it. (A process that asked the kernel to trap it, with
    // `prctl(PR_SET_TSC, PR_TSC_SIGSEGV)`, gets its signal here, even where
    // quanta would have read the OS clock: a run does not support that.)
    unsafe { std::arch::x86_64::_rdtsc() }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    /// Ticks read inline convert to the time that passed, as quanta's own.
    #[test]
    fn ticks_measure_the_time_that_passed() {
        let clock = Clock::get();
        let (start, began) = (clock.raw(), Instant::now());
        std::thread::sleep(Duration::from_millis(20));
        let (end, elapsed) = (clock.raw(), began.elapsed());
        let measured = Duration::from_nanos(clock.delta_as_nanos(start, end));
        assert!(
            measured >= Duration::from_millis(19) && measured <= elapsed + Duration::from_millis(2),
            "the clock measured {measured:?} of {elapsed:?}"
        );
        println!("reading the TSC inline: {}", clock.tsc);
    }
}
