//! GPU benchmarks: enumeration, the cached best device, the dispatch
//! overhead of a tiny kernel, and the example kernels against their CPU
//! versions. Without an adapter only enumeration runs.
//!
//! `cargo bench --bench gpu --features gpu`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flowyml::gpu::{GpuResourceManager, Workgroups};
use flowyml_workspace::gpu_kernels::{
    ADD_ONE_WGSL, AXPY_WGSL, axpy_cpu, axpy_workgroups, matmul_cpu, matmul_gpu, matmul_kernel,
    random_f32, random_matrix,
};

fn enumeration(c: &mut Criterion) {
    let mut group = c.benchmark_group("gpu/devices");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    group.bench_function("enumerate (GpuResourceManager::new)", |b| {
        b.iter(|| black_box(GpuResourceManager::new().device_count()))
    });
    let manager = GpuResourceManager::new();
    let _ = manager.best_device();
    group
        .sample_size(50)
        .measurement_time(Duration::from_secs(2));
    group.bench_function("best_device (cached)", |b| {
        b.iter(|| black_box(manager.best_device().is_ok()))
    });
    group.bench_function("ranked_devices (fresh memory figures)", |b| {
        b.iter(|| black_box(manager.ranked_devices().len()))
    });
    group.finish();
}

fn kernels(c: &mut Criterion) {
    let manager = GpuResourceManager::new();
    let gpu = match manager.best_device().and_then(|d| manager.open(d)) {
        Ok(gpu) => gpu,
        Err(e) => return eprintln!("skipping the kernel benchmarks: {e}"),
    };
    eprintln!("kernels on {}", gpu.info());

    let mut group = c.benchmark_group("gpu/dispatch");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(3));
    let add_one = gpu.kernel(ADD_ONE_WGSL, "add_one", 1).unwrap();
    let x: Vec<u32> = (0..64).collect();
    group.bench_function("tiny kernel, 64 u32 (upload + dispatch + read-back)", |b| {
        b.iter(|| {
            black_box(
                add_one
                    .run::<u32, u32>(&[&x], 64, Workgroups::linear(64, 64))
                    .unwrap(),
            )
        })
    });
    group.bench_function("compile + run tiny kernel", |b| {
        b.iter(|| {
            black_box(
                gpu.run_compute::<u32, u32>(ADD_ONE_WGSL, "add_one", &[&x], 64, 1)
                    .unwrap(),
            )
        })
    });
    group.finish();

    let n = 256;
    let (a, m) = (random_matrix(n, 1), random_matrix(n, 2));
    let matmul = matmul_kernel(&gpu).unwrap();
    let mut group = c.benchmark_group(format!("gpu/matmul {n}x{n} u32"));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements((n * n * n) as u64));
    group.bench_function("GPU", |b| {
        b.iter(|| black_box(matmul_gpu(&matmul, &a, &m, n).unwrap()))
    });
    group.bench_function("CPU (rayon)", |b| {
        b.iter(|| black_box(matmul_cpu(&a, &m, n)))
    });
    group.finish();

    let len = 1 << 20;
    let (x, y) = (random_f32(len, 3), random_f32(len, 4));
    let axpy = gpu.kernel(AXPY_WGSL, "axpy", 2).unwrap();
    let mut group = c.benchmark_group("gpu/axpy 1M f32");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Elements(len as u64));
    group.bench_function("GPU", |b| {
        b.iter(|| {
            black_box(
                axpy.run::<f32, f32>(&[&x, &y], len, axpy_workgroups(len))
                    .unwrap(),
            )
        })
    });
    group.bench_function("CPU (rayon)", |b| b.iter(|| black_box(axpy_cpu(&x, &y))));
    group.finish();
}

criterion_group!(benches, enumeration, kernels);
criterion_main!(benches);
