//! The compute kernels of the GPU example, test and benchmark, with their
//! CPU references. Every operation is exact on both sides (integers that
//! wrap alike, floats that are exactly representable), so the GPU's output
//! must equal the CPU's bit for bit.

use flowyml::gpu::{Gpu, Kernel, Workgroups};
use rayon::prelude::*;

use crate::SplitMix64;

/// `c = a × b` for square `n × n` matrices of `u32`, wrapping like WGSL.
/// Inputs: `a`, `b`, `[n]`.
pub const MATMUL_WGSL: &str = "
@group(0) @binding(0) var<storage, read> a: array<u32>;
@group(0) @binding(1) var<storage, read> b: array<u32>;
@group(0) @binding(2) var<storage, read> dims: array<u32>;
@group(0) @binding(3) var<storage, read_write> c: array<u32>;

@compute @workgroup_size(8, 8)
fn matmul(@builtin(global_invocation_id) id: vec3<u32>) {
    let n = dims[0];
    if id.x >= n || id.y >= n { return; }
    var acc = 0u;
    for (var k = 0u; k < n; k++) {
        acc += a[id.y * n + k] * b[k * n + id.x];
    }
    c[id.y * n + id.x] = acc;
}
";

/// Workgroup side of [`MATMUL_WGSL`].
pub const MATMUL_WORKGROUP: u32 = 8;

/// `z = 0.5 * x + y` over `f32`; exact for the integers [`random_f32`] makes.
pub const AXPY_WGSL: &str = "
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read_write> z: array<f32>;

@compute @workgroup_size(256)
fn axpy(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    // Large vectors spread over y: one dimension holds at most 65,535 groups.
    let i = id.x + id.y * groups.x * 256u;
    if i < arrayLength(&z) { z[i] = 0.5 * x[i] + y[i]; }
}
";

/// Workgroup size of [`AXPY_WGSL`].
pub const AXPY_WORKGROUP: u32 = 256;

/// `y = x + 1` over `u32`: the smallest useful kernel, for dispatch overhead.
pub const ADD_ONE_WGSL: &str = "
@group(0) @binding(0) var<storage, read> x: array<u32>;
@group(0) @binding(1) var<storage, read_write> y: array<u32>;

@compute @workgroup_size(64)
fn add_one(@builtin(global_invocation_id) id: vec3<u32>) {
    if id.x < arrayLength(&x) { y[id.x] = x[id.x] + 1u; }
}
";

/// An `n × n` matrix of values below 256.
pub fn random_matrix(n: usize, seed: u64) -> Vec<u32> {
    let mut rng = SplitMix64::new(seed);
    (0..n * n).map(|_| rng.below(256) as u32).collect()
}

/// `len` integers below 2^20 as `f32`: halving and adding them is exact.
pub fn random_f32(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed);
    (0..len).map(|_| rng.below(1 << 20) as f32).collect()
}

/// The CPU reference of [`MATMUL_WGSL`], parallel over rows (i-k-j order
/// so the inner loop streams through `b` and `c`).
pub fn matmul_cpu(a: &[u32], b: &[u32], n: usize) -> Vec<u32> {
    let mut c = vec![0u32; n * n];
    c.par_chunks_mut(n.max(1)).enumerate().for_each(|(i, row)| {
        for k in 0..n {
            let aik = a[i * n + k];
            for (cj, &bkj) in row.iter_mut().zip(&b[k * n..(k + 1) * n]) {
                *cj = cj.wrapping_add(aik.wrapping_mul(bkj));
            }
        }
    });
    c
}

/// The CPU reference of [`AXPY_WGSL`].
pub fn axpy_cpu(x: &[f32], y: &[f32]) -> Vec<f32> {
    x.par_iter().zip(y).map(|(&x, &y)| 0.5 * x + y).collect()
}

/// The dispatch of [`MATMUL_WGSL`] for `n × n` matrices.
pub fn matmul_workgroups(n: usize) -> Workgroups {
    let side = (n as u32).div_ceil(MATMUL_WORKGROUP);
    Workgroups::from([side, side, 1])
}

/// The dispatch of [`AXPY_WGSL`] for `len` elements: along x, spilling
/// over to y past the per-dimension limit.
pub fn axpy_workgroups(len: usize) -> Workgroups {
    let groups = len.div_ceil(AXPY_WORKGROUP as usize) as u32;
    let x = groups.min(65_535);
    Workgroups::from([x, groups.div_ceil(x.max(1)), 1])
}

/// Compiles [`MATMUL_WGSL`] on `gpu`.
pub fn matmul_kernel(gpu: &Gpu) -> flowyml::Result<Kernel> {
    gpu.kernel(MATMUL_WGSL, "matmul", 3)
}

/// Runs a compiled [`matmul_kernel`] on `n × n` matrices.
pub fn matmul_gpu(kernel: &Kernel, a: &[u32], b: &[u32], n: usize) -> flowyml::Result<Vec<u32>> {
    kernel.run(&[a, b, &[n as u32]], n * n, matmul_workgroups(n))
}
