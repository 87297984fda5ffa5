//! An opened device, and compute shaders over typed buffers on it.
//!
//! # Design
//! * [`Gpu`] is a `Device`, its `Queue` and the [`GpuDevice`] they belong
//!   to. wgpu's handles are reference-counted, so cloning a `Gpu` is cheap
//!   and every clone drives the same device: a scheduler opens each device
//!   once per run and hands clones (or an `Arc<Gpu>`) to its GPU steps.
//! * [`Kernel`] is a compiled compute pipeline with a fixed binding layout:
//!   the inputs are `var<storage, read>` at `@group(0) @binding(0..n)`, the
//!   output is `var<storage, read_write>` at `@binding(n)`. Compiling once
//!   and dispatching many times keeps the per-dispatch cost to buffer
//!   uploads, one submit and one read-back.
//! * wgpu reports validation errors through a callback that panics by
//!   default. Every call here runs inside error scopes instead, so a bad
//!   shader, entry point or binding comes back as an [`Error::Gpu`] naming
//!   the device, and the device's fallback handler only logs.

use std::fmt;
use std::sync::Arc;

use bytemuck::Pod;
use wgpu::util::DeviceExt as _;

use super::GpuDevice;
use crate::error::{Error, Result};

/// An opened device: its `Device`, `Queue` and description. `Send + Sync`
/// and cheap to clone.
///
/// Open one with [`GpuResourceManager::open`](super::GpuResourceManager::open):
///
/// ```
/// use flowyml::gpu::GpuResourceManager;
///
/// let manager = GpuResourceManager::new();
/// let Ok(device) = manager.best_device() else {
///     println!("no GPU adapter here: nothing to run on");
///     return Ok(());
/// };
/// let gpu = manager.open(device)?;
/// const DOUBLE: &str = "
///     @group(0) @binding(0) var<storage, read> x: array<u32>;
///     @group(0) @binding(1) var<storage, read_write> y: array<u32>;
///     @compute @workgroup_size(64)
///     fn main(@builtin(global_invocation_id) id: vec3<u32>) {
///         if id.x < arrayLength(&x) { y[id.x] = 2u * x[id.x]; }
///     }";
/// let x: Vec<u32> = (0..1000).collect();
/// let y: Vec<u32> = gpu.run_compute(DOUBLE, "main", &[&x], x.len(), flowyml::gpu::Workgroups::linear(x.len(), 64))?;
/// assert_eq!(y[999], 1998);
/// # Ok::<(), flowyml::Error>(())
/// ```
#[derive(Clone)]
pub struct Gpu {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: Arc<GpuDevice>,
}

impl Gpu {
    pub(crate) fn new(device: wgpu::Device, queue: wgpu::Queue, info: GpuDevice) -> Self {
        let name = info.name.clone();
        // The default handler panics; errors of flowyml's own calls are
        // caught by scopes, so only a user's raw wgpu calls reach this.
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            tracing::error!(device = %name, "uncaptured wgpu error: {e}");
        }));
        Gpu {
            device,
            queue,
            info: Arc::new(info),
        }
    }

    /// The wgpu device, for work beyond [`run_compute`](Self::run_compute).
    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    /// The device's queue.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    /// Which device this is.
    pub fn info(&self) -> &GpuDevice {
        &self.info
    }

    fn error(&self, message: impl Into<String>) -> Error {
        Error::Gpu {
            device: Some(self.info.name.clone()),
            message: message.into(),
        }
    }

    /// Compiles the WGSL compute shader `wgsl` at `entry_point`, for
    /// `inputs` input buffers bound as `var<storage, read>` at
    /// `@group(0) @binding(0..inputs)` and one output buffer bound as
    /// `var<storage, read_write>` at `@binding(inputs)`. Errors name the
    /// device and carry the compiler's message.
    pub fn kernel(&self, wgsl: &str, entry_point: &str, inputs: usize) -> Result<Kernel> {
        let storage = |binding: u32, read_only: bool| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let max = self.device.limits().max_storage_buffers_per_shader_stage as usize;
        if inputs + 1 > max {
            return Err(self.error(format!(
                "a kernel with {inputs} inputs needs {} storage buffers; the device allows {max}",
                inputs + 1
            )));
        }
        let entries: Vec<_> = (0..=inputs)
            .map(|i| storage(i as u32, i < inputs))
            .collect();
        let pipeline = self.scoped(&format!("compiling compute shader `{entry_point}`"), || {
            let module = self
                .device
                .create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(entry_point),
                    source: wgpu::ShaderSource::Wgsl(wgsl.into()),
                });
            let layout = self
                .device
                .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                    label: Some("flowyml kernel"),
                    entries: &entries,
                });
            let pipeline_layout =
                self.device
                    .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                        label: Some("flowyml kernel"),
                        bind_group_layouts: &[Some(&layout)],
                        immediate_size: 0,
                    });
            let pipeline = self
                .device
                .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(entry_point),
                    layout: Some(&pipeline_layout),
                    module: &module,
                    entry_point: Some(entry_point),
                    compilation_options: Default::default(),
                    cache: None,
                });
            (pipeline, layout)
        })?;
        Ok(Kernel {
            gpu: self.clone(),
            pipeline: pipeline.0,
            layout: pipeline.1,
            entry_point: entry_point.to_owned(),
            inputs,
        })
    }

    /// Compiles `wgsl` and runs it once: uploads `inputs`, dispatches
    /// `workgroups`, and reads back `output_len` values of the output
    /// buffer (which starts zeroed). For repeated dispatches compile a
    /// [`Kernel`] once instead.
    pub fn run_compute<I: Pod, O: Pod>(
        &self,
        wgsl: &str,
        entry_point: &str,
        inputs: &[&[I]],
        output_len: usize,
        workgroups: impl Into<Workgroups>,
    ) -> Result<Vec<O>> {
        self.kernel(wgsl, entry_point, inputs.len())?
            .run(inputs, output_len, workgroups)
    }

    /// Runs `f` inside validation and out-of-memory error scopes; the first
    /// error either catches becomes an [`Error::Gpu`] about `what`.
    fn scoped<T>(&self, what: &str, f: impl FnOnce() -> T) -> Result<T> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let value = f();
        let validation = pollster::block_on(validation.pop());
        let oom = pollster::block_on(oom.pop());
        match validation.or(oom) {
            None => Ok(value),
            Some(e) => Err(self.error(format!("{what}: {e}"))),
        }
    }
}

impl fmt::Debug for Gpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gpu").field("device", &*self.info).finish()
    }
}

/// How many workgroups a dispatch launches in each dimension.
///
/// ```
/// use flowyml::gpu::Workgroups;
///
/// // 1,000 items in workgroups of 64 threads: 16 workgroups.
/// assert_eq!(Workgroups::linear(1_000, 64), Workgroups { x: 16, y: 1, z: 1 });
/// assert_eq!(Workgroups::from([4, 4, 1]), Workgroups { x: 4, y: 4, z: 1 });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Workgroups {
    /// Workgroups along x.
    pub x: u32,
    /// Workgroups along y.
    pub y: u32,
    /// Workgroups along z.
    pub z: u32,
}

impl Workgroups {
    /// Enough workgroups of `workgroup_size` threads along x to cover
    /// `items` (saturating at `u32::MAX`; a dispatch past the device's limit
    /// is refused with an error when it runs).
    pub fn linear(items: usize, workgroup_size: u32) -> Self {
        let groups = items.div_ceil(workgroup_size.max(1) as usize);
        Workgroups {
            x: u32::try_from(groups).unwrap_or(u32::MAX),
            y: 1,
            z: 1,
        }
    }
}

impl From<[u32; 3]> for Workgroups {
    fn from([x, y, z]: [u32; 3]) -> Self {
        Workgroups { x, y, z }
    }
}

impl From<u32> for Workgroups {
    fn from(x: u32) -> Self {
        Workgroups { x, y: 1, z: 1 }
    }
}

/// A compiled compute shader, ready to dispatch on its [`Gpu`] as often as
/// needed. Made by [`Gpu::kernel`].
///
/// ```
/// use flowyml::gpu::{GpuResourceManager, Workgroups};
///
/// let manager = GpuResourceManager::new();
/// let Ok(device) = manager.best_device() else { return Ok(()) };
/// let gpu = manager.open(device)?;
/// let add = gpu.kernel("
///     @group(0) @binding(0) var<storage, read> a: array<f32>;
///     @group(0) @binding(1) var<storage, read> b: array<f32>;
///     @group(0) @binding(2) var<storage, read_write> c: array<f32>;
///     @compute @workgroup_size(64)
///     fn add(@builtin(global_invocation_id) id: vec3<u32>) {
///         if id.x < arrayLength(&c) { c[id.x] = a[id.x] + b[id.x]; }
///     }", "add", 2)?;
/// for n in [10, 1_000] {
///     let a = vec![1.5_f32; n];
///     let b = vec![0.25_f32; n];
///     let c: Vec<f32> = add.run(&[&a, &b], n, Workgroups::linear(n, 64))?;
///     assert!(c.iter().all(|&v| v == 1.75));
/// }
/// # Ok::<(), flowyml::Error>(())
/// ```
pub struct Kernel {
    gpu: Gpu,
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
    entry_point: String,
    inputs: usize,
}

/// Buffers must be a non-zero multiple of 4 bytes to be bound and copied.
fn padded(bytes: usize) -> u64 {
    (bytes.max(4) as u64).next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT)
}

impl Kernel {
    /// How many input buffers the kernel binds.
    pub fn inputs(&self) -> usize {
        self.inputs
    }

    /// The device the kernel runs on.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// Uploads `inputs`, dispatches `workgroups` and returns the first
    /// `output_len` values of the output buffer, which starts zeroed.
    ///
    /// Errors (naming the device and entry point): a wrong number of
    /// inputs, an empty input, zero-sized types, buffers or dispatches past the device's
    /// limits, validation errors, and a lost device.
    pub fn run<I: Pod, O: Pod>(
        &self,
        inputs: &[&[I]],
        output_len: usize,
        workgroups: impl Into<Workgroups>,
    ) -> Result<Vec<O>> {
        let gpu = &self.gpu;
        let workgroups = workgroups.into();
        let fail = |message: String| gpu.error(format!("kernel `{}`: {message}", self.entry_point));
        if inputs.len() != self.inputs {
            return Err(fail(format!(
                "compiled for {} inputs, given {}",
                self.inputs,
                inputs.len()
            )));
        }
        if let Some(i) = inputs.iter().position(|input| input.is_empty()) {
            // WebGPU cannot bind an empty buffer, and a padded one would show
            // the shader a phantom element.
            return Err(fail(format!(
                "input #{i} is empty; WebGPU cannot bind an empty buffer"
            )));
        }
        if size_of::<I>() == 0 || size_of::<O>() == 0 {
            return Err(fail(
                "zero-sized element types have no bytes to move".into(),
            ));
        }
        let limits = gpu.device.limits();
        let max_groups = limits.max_compute_workgroups_per_dimension;
        if [workgroups.x, workgroups.y, workgroups.z]
            .iter()
            .any(|&n| n > max_groups)
        {
            return Err(fail(format!(
                "{workgroups:?} exceeds the device's {max_groups} workgroups per dimension; \
                 spread the work over y and z"
            )));
        }
        let output_bytes = output_len
            .checked_mul(size_of::<O>())
            .ok_or_else(|| fail(format!("an output of {output_len} values overflows usize")))?;
        let max_binding = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
        let sizes = inputs.iter().map(|i| size_of_val(*i)).chain([output_bytes]);
        if let Some(big) = sizes.into_iter().find(|&b| padded(b) > max_binding) {
            return Err(fail(format!(
                "a buffer of {big} bytes exceeds the device's storage binding limit of {max_binding} bytes"
            )));
        }

        let what = format!("dispatching kernel `{}`", self.entry_point);
        let (staging, submission) = gpu.scoped(&what, || {
            let input_buffers: Vec<wgpu::Buffer> = inputs
                .iter()
                .map(|data| {
                    gpu.device
                        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                            label: Some("flowyml input"),
                            contents: bytemuck::cast_slice(data),
                            usage: wgpu::BufferUsages::STORAGE,
                        })
                })
                .collect();
            let size = padded(output_bytes);
            let output = gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("flowyml output"),
                size,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            let staging = gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("flowyml read-back"),
                size,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let entries: Vec<wgpu::BindGroupEntry> = input_buffers
                .iter()
                .chain([&output])
                .enumerate()
                .map(|(i, buffer)| wgpu::BindGroupEntry {
                    binding: i as u32,
                    resource: buffer.as_entire_binding(),
                })
                .collect();
            let bind_group = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("flowyml kernel"),
                layout: &self.layout,
                entries: &entries,
            });
            let mut encoder = gpu
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("flowyml kernel"),
                });
            {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some(&self.entry_point),
                    timestamp_writes: None,
                });
                pass.set_pipeline(&self.pipeline);
                pass.set_bind_group(0, &bind_group, &[]);
                pass.dispatch_workgroups(workgroups.x, workgroups.y, workgroups.z);
            }
            encoder.copy_buffer_to_buffer(&output, 0, &staging, 0, size);
            let submission = gpu.queue.submit([encoder.finish()]);
            (staging, submission)
        })?;

        let (sender, receiver) = std::sync::mpsc::channel();
        staging
            .slice(..)
            .map_async(wgpu::MapMode::Read, move |result| {
                // The receiver waits below; a send can only fail if it
                // gave up, and then nobody needs the result.
                let _ = sender.send(result);
            });
        gpu.device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(submission),
                timeout: None,
            })
            .map_err(|e| fail(format!("waiting for the dispatch: {e}")))?;
        receiver
            .recv()
            .map_err(|_| fail("the read-back was dropped before it completed".into()))?
            .map_err(|e| fail(format!("reading the output back: {e}")))?;
        let mut out = vec![O::zeroed(); output_len];
        {
            let view = staging
                .slice(..)
                .get_mapped_range()
                .map_err(|e| fail(format!("reading the output back: {e}")))?;
            bytemuck::cast_slice_mut::<O, u8>(&mut out).copy_from_slice(&view[..output_bytes]);
        }
        staging.unmap();
        Ok(out)
    }
}

impl fmt::Debug for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kernel")
            .field("entry_point", &self.entry_point)
            .field("inputs", &self.inputs)
            .field("device", &self.gpu.info.name)
            .finish()
    }
}
