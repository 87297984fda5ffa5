//! GPU resource management and a compute shader checked against the CPU.
//!
//! Prints the device table and the best device, then runs a 512 × 512
//! integer matrix product and a 4M-element vector operation on it and
//! checks both against their CPU versions exactly. Exits with an error
//! where no adapter exists (install `mesa-vulkan-drivers` for lavapipe).
//! (A pipeline with a GPU step replaces the bare calls once pipelines land.)
//!
//! `cargo run --release --example gpu --features gpu` (`FLOWYML_GPU=<index or name>` picks a device)

use flowyml::gpu::GpuResourceManager;
use flowyml_workspace::gpu_kernels::{
    AXPY_WGSL, axpy_cpu, axpy_workgroups, matmul_cpu, matmul_gpu, matmul_kernel, random_f32,
    random_matrix,
};
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let manager = GpuResourceManager::new();
    manager.print_memory_summary();
    let device = manager.best_device()?;
    let gpu = manager.open(device)?;
    println!("\nrunning on {device}");

    let n = 512;
    let (a, b) = (random_matrix(n, 1), random_matrix(n, 2));
    let kernel = matmul_kernel(&gpu)?;
    let start = Instant::now();
    let on_gpu = matmul_gpu(&kernel, &a, &b, n)?;
    let gpu_time = start.elapsed();
    let start = Instant::now();
    let on_cpu = matmul_cpu(&a, &b, n);
    let cpu_time = start.elapsed();
    if on_gpu != on_cpu {
        let first = on_gpu.iter().zip(&on_cpu).position(|(g, c)| g != c);
        return Err(format!("matmul {n}x{n}: GPU and CPU differ, first at {first:?}").into());
    }
    println!(
        "matmul {n}x{n} u32: GPU == CPU exactly (GPU {gpu_time:.2?} incl. upload and read-back, CPU {cpu_time:.2?})"
    );

    let len = 4 << 20;
    let (x, y) = (random_f32(len, 3), random_f32(len, 4));
    let start = Instant::now();
    let z: Vec<f32> = gpu.run_compute(AXPY_WGSL, "axpy", &[&x, &y], len, axpy_workgroups(len))?;
    let gpu_time = start.elapsed();
    let start = Instant::now();
    let expected = axpy_cpu(&x, &y);
    let cpu_time = start.elapsed();
    if z != expected {
        return Err(format!("axpy over {len} f32: GPU and CPU differ").into());
    }
    println!(
        "0.5*x + y over {len} f32: GPU == CPU exactly (GPU {gpu_time:.2?} incl. compile, upload and read-back, CPU {cpu_time:.2?})"
    );
    let usage = manager.memory_usage(device)?;
    println!(
        "memory of {}: used {:?} MB of {:?} MB ({})",
        device.name, usage.used_mb, usage.total_mb, usage.source
    );
    Ok(())
}
