//! A pipeline with GPU steps, checked against the CPU.
//!
//! Prints the device table and the best device, then runs a pipeline whose
//! GPU steps (a 512 × 512 integer matrix product and a 4M-element vector
//! operation, in WGSL) run beside the same computations on the CPU, and a
//! last step checks that both agree exactly. The run's records name the
//! device and its memory before and after each GPU step. Exits with an
//! error where no adapter exists (install `mesa-vulkan-drivers` for
//! lavapipe); `--no-gpu` shows the GPU steps failing by name instead.
//!
//! `cargo run --release --example gpu --features gpu` (`FLOWYML_GPU=<index or name>` picks a device)

use std::process::ExitCode;

use flowyml::gpu::{Gpu, GpuResourceManager};
use flowyml::{Pipeline, step};
use flowyml_workspace::gpu_kernels::{
    AXPY_WGSL, axpy_cpu, axpy_workgroups, matmul_cpu, matmul_gpu, matmul_kernel, random_f32,
    random_matrix,
};

const N: usize = 512;
const LEN: usize = 4 << 20;

#[step(outputs = ["a", "b", "x", "y"])]
fn make_inputs() -> (Vec<u32>, Vec<u32>, Vec<f32>, Vec<f32>) {
    (
        random_matrix(N, 1),
        random_matrix(N, 2),
        random_f32(LEN, 3),
        random_f32(LEN, 4),
    )
}

#[step(outputs = ["c_gpu"], gpu)]
fn matmul_on_gpu(a: &Vec<u32>, b: &Vec<u32>, gpu: &Gpu) -> flowyml::Result<Vec<u32>> {
    matmul_gpu(&matmul_kernel(gpu)?, a, b, N)
}

#[step(outputs = ["c_cpu"])]
fn matmul_on_cpu(a: &Vec<u32>, b: &Vec<u32>) -> Vec<u32> {
    matmul_cpu(a, b, N)
}

#[step(outputs = ["z_gpu"], gpu)]
fn axpy_on_gpu(x: &Vec<f32>, y: &Vec<f32>, gpu: &Gpu) -> flowyml::Result<Vec<f32>> {
    gpu.run_compute(
        AXPY_WGSL,
        "axpy",
        &[x.as_slice(), y.as_slice()],
        LEN,
        axpy_workgroups(LEN),
    )
}

#[step(outputs = ["z_cpu"])]
fn axpy_on_cpu(x: &Vec<f32>, y: &Vec<f32>) -> Vec<f32> {
    axpy_cpu(x, y)
}

#[step(outputs = ["agree"])]
fn compare(
    c_gpu: &Vec<u32>,
    c_cpu: &Vec<u32>,
    z_gpu: &Vec<f32>,
    z_cpu: &Vec<f32>,
) -> Result<bool, String> {
    if let Some(i) = c_gpu.iter().zip(c_cpu).position(|(g, c)| g != c) {
        return Err(format!("matmul {N}x{N}: GPU and CPU differ, first at {i}"));
    }
    if let Some(i) = z_gpu.iter().zip(z_cpu).position(|(g, c)| g != c) {
        return Err(format!(
            "axpy over {LEN} f32: GPU and CPU differ, first at {i}"
        ));
    }
    Ok(true)
}

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
    println!("best device: {}\n", manager.best_device()?);

    let mut pipeline = Pipeline::new("gpu_vs_cpu");
    pipeline
        .add_step(make_inputs)
        .add_step(matmul_on_gpu)
        .add_step(matmul_on_cpu)
        .add_step(axpy_on_gpu)
        .add_step(axpy_on_cpu)
        .add_step(compare)
        .no_gpu(std::env::args().any(|a| a == "--no-gpu"));
    let result = pipeline.run()?;
    println!("{}", result.summary());
    for step in ["matmul_on_gpu", "axpy_on_gpu"] {
        for note in result.step(step).expect("ran").notes {
            println!("{step}: {note}");
        }
    }
    println!("GPU == CPU exactly: {}", result.get::<bool>("agree")?);
    Ok(())
}
