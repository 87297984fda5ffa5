//! GPU resource management on any vendor's GPU, through wgpu (feature `gpu`).
//!
//! [`GpuResourceManager`] lists every adapter wgpu can open (Vulkan, Metal,
//! DX12, GL), not only CUDA devices, one entry per
//! physical GPU, reports each one's memory from the best source there is,
//! picks the best device, and opens it for compute shaders:
//!
//! ```
//! use flowyml::gpu::GpuResourceManager;
//!
//! let gpu = GpuResourceManager::new();
//! if gpu.is_available() {
//!     println!("GPUs available: {}", gpu.device_count());
//!     let usage = gpu.memory_usage(0)?;
//!     println!("GPU 0: {:?}/{:?} MB ({})", usage.used_mb, usage.total_mb, usage.source);
//! }
//! match gpu.best_device() {
//!     Ok(device) => println!("Using GPU: {device}"),
//!     Err(e) => println!("no GPU: {e}"),
//! }
//! gpu.print_memory_summary();
//! # Ok::<(), flowyml::Error>(())
//! ```
//!
//! # Design
//! * [`device`](GpuDevice): adapters are merged per physical GPU (by PCI
//!   address, else vendor + device id + name) and opened through the best
//!   backend, Vulkan > Metal > DX12 > GL. Adapters that cannot run compute
//!   shaders are dropped, as nothing here could use them.
//! * [`memory`](MemoryUsage): NVML, AMD sysfs, `/proc/meminfo` for CPU
//!   adapters, Vulkan's memory budget, Vulkan's heap size, in that order;
//!   [`MemorySource`] says which one answered and so whose use `used`
//!   counts. Unknown figures are `None`.
//! * [`select`](rank_devices): discrete > integrated > other > virtual >
//!   CPU, then free memory, total memory, enumeration order; an override by
//!   index or name from the API, `FLOWYML_GPU` or `WGPU_ADAPTER_NAME`.
//!   `WGPU_BACKEND` limits the backends of [`GpuResourceManager::new`].
//! * Enumeration runs once, in the constructor (it loads drivers: tens of
//!   milliseconds). [`best_device`](GpuResourceManager::best_device) ranks on
//!   its first call and caches the choice, so a run keeps one device even
//!   as memory figures move; [`ranked_devices`](GpuResourceManager::ranked_devices)
//!   ranks afresh.
//! * [`Gpu`] is an opened device; [`Kernel`] a compiled WGSL compute shader
//!   that uploads typed buffers, dispatches and reads the output back.

mod context;
mod device;
mod manager;
mod memory;
mod pci;
mod select;
mod step;
#[cfg(any(
    windows,
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd"
))]
mod vk;

pub use context::{Gpu, Kernel, Workgroups};
pub use device::GpuDevice;
pub use manager::{DeviceRef, GpuResourceManager};
pub use memory::{MemorySource, MemoryUsage, NvmlReader, read_amd_sysfs, read_meminfo};
pub use select::{DevicePreference, FLOWYML_GPU, choose_device, rank_devices};
/// The wgpu that flowyml is built on, for its types (`DeviceType`,
/// `Backends`, ...) and for work beyond [`Gpu::run_compute`].
pub use wgpu;
