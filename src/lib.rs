//! Fixtures shared by flowyml's examples, integration tests and benchmarks.

pub mod bench;
pub mod chart;
#[cfg(feature = "gpu")]
pub mod gpu_kernels;

/// A deterministic pseudo-random generator (SplitMix64), so that tests and
/// benchmarks see the same data on every run without a dependency.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A float uniform in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// An integer uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Spins the CPU for about `micros` microseconds of dependent arithmetic
/// and returns a value the optimizer cannot drop: a stand-in for a step's
/// real work in benchmarks. The iterations per microsecond are measured
/// once per process ([`calibration`]), since a constant tuned on one
/// machine ran 2.8× fast on another; `black_box` keeps LLVM from folding
/// the chain.
pub fn busy_work(micros: u64) -> u64 {
    spin(micros * calibration())
}

fn spin(iterations: u64) -> u64 {
    let mut x = iterations;
    for i in 0..iterations {
        x = std::hint::black_box(x)
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(i);
    }
    x
}

/// How many iterations of [`busy_work`]'s loop take a microsecond on this
/// machine: the best of several timed runs of 2 ms nominal, measured on
/// first use.
pub fn calibration() -> u64 {
    static PER_MICRO: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *PER_MICRO.get_or_init(|| {
        const PROBE: u64 = 500_000;
        let best = (0..7)
            .map(|_| {
                let start = std::time::Instant::now();
                std::hint::black_box(spin(PROBE));
                start.elapsed()
            })
            .min()
            .expect("seven runs");
        (PROBE as f64 / best.as_secs_f64() / 1e6).round().max(1.0) as u64
    })
}
