//! Memory figures of a device, each from the best source that knows it.
//!
//! No single API reports the memory of every GPU, so
//! [`GpuResourceManager::memory_usage`](super::GpuResourceManager::memory_usage)
//! asks, in order, the first source that applies:
//!
//! 1. NVML (NVIDIA, feature `nvml`): device-wide, from the driver.
//! 2. AMD's sysfs `mem_info_vram_used` / `mem_info_vram_total`: device-wide.
//! 3. `/proc/meminfo` for CPU adapters (lavapipe, WARP, SwiftShader): they
//!    allocate from system RAM, so that is their memory.
//! 4. Vulkan's `VK_EXT_memory_budget`: *this process's* usage and budget.
//! 5. Vulkan's device-local heap size: `total` only, `used` unknown.
//!
//! Every figure that the source does not give is `None`: a made-up number
//! would mislead a scheduler more than an honest gap.
//!
//! The file readers take the root of the file system as a parameter so that
//! they can be tested on fake trees (`/` in production).

use std::fmt;
use std::path::Path;

use super::GpuDevice;
use crate::error::{Error, Result};

const MIB: u64 = 1024 * 1024;

/// Memory of one device, in MiB (`1 MB = 2^20 bytes` in `used_mb` and
/// `total_mb`).
///
/// ```
/// use flowyml::gpu::{MemorySource, MemoryUsage};
///
/// let usage = MemoryUsage { used_mb: Some(1_000), total_mb: Some(8_192), source: MemorySource::Nvml };
/// assert_eq!(usage.free_mb(), Some(7_192));
/// let heap_only = MemoryUsage { used_mb: None, total_mb: Some(2_048), source: MemorySource::VulkanHeap };
/// assert_eq!(heap_only.free_mb(), None); // unknown, not guessed
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryUsage {
    /// Memory in use, where the source knows it (see [`MemorySource`] for
    /// whose use it counts).
    pub used_mb: Option<u64>,
    /// Memory the device has, where the source knows it.
    pub total_mb: Option<u64>,
    /// Where the figures come from.
    pub source: MemorySource,
}

impl MemoryUsage {
    /// Nothing known.
    pub const UNKNOWN: MemoryUsage = MemoryUsage {
        used_mb: None,
        total_mb: None,
        source: MemorySource::Unknown,
    };

    /// Memory still available: `total - used`, and for a Vulkan budget no
    /// more than `budget - used` (the budget accounts for other processes).
    /// `None` where either figure is unknown.
    pub fn free_mb(&self) -> Option<u64> {
        let free = self.total_mb?.saturating_sub(self.used_mb?);
        match self.source {
            MemorySource::VulkanBudget { budget_mb } => {
                Some(free.min(budget_mb.saturating_sub(self.used_mb?)))
            }
            _ => Some(free),
        }
    }

    fn from_bytes(used: Option<u64>, total: Option<u64>, source: MemorySource) -> Self {
        MemoryUsage {
            used_mb: used.map(|b| b / MIB),
            total_mb: total.map(|b| b / MIB),
            source,
        }
    }
}

/// Where a [`MemoryUsage`] comes from, and so what its figures mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MemorySource {
    /// NVIDIA's management library: device-wide figures from the driver.
    Nvml,
    /// AMD's `mem_info_vram_*` files in sysfs: device-wide figures.
    AmdSysfs,
    /// The system's RAM from `/proc/meminfo`, for adapters that run on the
    /// CPU and allocate from it: system-wide figures.
    SystemMemory,
    /// Vulkan's `VK_EXT_memory_budget` over the device-local heaps: `used` is
    /// **this process's** usage, `total` the heaps' size.
    VulkanBudget {
        /// What this process may allocate in all (its usage included),
        /// after other processes' use, in MiB.
        budget_mb: u64,
    },
    /// The size of Vulkan's device-local heaps: `total` only.
    VulkanHeap,
    /// No source knows this device's memory.
    Unknown,
}

impl MemorySource {
    /// Whether `used` counts every process's use of the device (or system),
    /// rather than this process's only or nothing.
    pub fn is_device_wide(&self) -> bool {
        matches!(
            self,
            MemorySource::Nvml | MemorySource::AmdSysfs | MemorySource::SystemMemory
        )
    }
}

impl fmt::Display for MemorySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemorySource::Nvml => f.write_str("NVML (device)"),
            MemorySource::AmdSysfs => f.write_str("amdgpu sysfs (device)"),
            MemorySource::SystemMemory => f.write_str("/proc/meminfo (system RAM)"),
            MemorySource::VulkanBudget { budget_mb } => {
                write!(f, "Vulkan budget (this process, budget {budget_mb} MB)")
            }
            MemorySource::VulkanHeap => f.write_str("Vulkan heap size (used unknown)"),
            MemorySource::Unknown => f.write_str("unknown"),
        }
    }
}

fn gpu_error(device: &GpuDevice, message: impl Into<String>) -> Error {
    Error::Gpu {
        device: Some(device.name.clone()),
        message: message.into(),
    }
}

/// System RAM from `<root>/proc/meminfo`: `total = MemTotal`,
/// `used = MemTotal - MemAvailable` (`used` is `None` on kernels without
/// `MemAvailable`). The source is [`MemorySource::SystemMemory`].
///
/// ```
/// use flowyml::gpu::{read_meminfo, MemorySource};
///
/// let root = std::env::temp_dir().join(format!("flowyml-doc-meminfo-{}", std::process::id()));
/// std::fs::create_dir_all(root.join("proc"))?;
/// std::fs::write(root.join("proc/meminfo"), "MemTotal: 16777216 kB\nMemFree: 1 kB\nMemAvailable: 12582912 kB\n")?;
/// let usage = read_meminfo(&root)?;
/// assert_eq!((usage.used_mb, usage.total_mb), (Some(4096), Some(16384)));
/// assert_eq!(usage.source, MemorySource::SystemMemory);
/// # std::fs::remove_dir_all(&root)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn read_meminfo(root: &Path) -> Result<MemoryUsage> {
    let path = root.join("proc/meminfo");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let field = |name: &str| -> Option<u64> {
        text.lines().find_map(|line| {
            let rest = line.strip_prefix(name)?.strip_prefix(':')?;
            let kib = rest.trim().strip_suffix("kB").unwrap_or(rest).trim();
            kib.parse::<u64>().ok()
        })
    };
    let total = field("MemTotal").ok_or_else(|| Error::Gpu {
        device: None,
        message: format!("{}: no MemTotal line", path.display()),
    })?;
    let used = field("MemAvailable").map(|available| total.saturating_sub(available));
    Ok(MemoryUsage::from_bytes(
        used.map(|k| k * 1024),
        Some(total * 1024),
        MemorySource::SystemMemory,
    ))
}

/// AMD's VRAM figures from `<root>/sys/bus/pci/devices/<pci id>/mem_info_vram_{used,total}`.
///
/// Where the device's PCI id is unknown, the one device of sysfs with its
/// vendor and device id is used; with several such cards the answer would
/// be a guess, so it is an error instead.
///
/// ```
/// use flowyml::gpu::{read_amd_sysfs, GpuDevice, MemorySource};
///
/// let root = std::env::temp_dir().join(format!("flowyml-doc-amd-{}", std::process::id()));
/// let dir = root.join("sys/bus/pci/devices/0000:03:00.0");
/// std::fs::create_dir_all(&dir)?;
/// std::fs::write(dir.join("mem_info_vram_used"), "1073741824\n")?;
/// std::fs::write(dir.join("mem_info_vram_total"), "17163091968\n")?;
/// let mut card = GpuDevice::synthetic(0, "AMD Radeon RX 6800", flowyml::gpu::wgpu::DeviceType::DiscreteGpu);
/// card.pci_bus_id = Some("0000:03:00.0".into());
/// let usage = read_amd_sysfs(&root, &card)?;
/// assert_eq!((usage.used_mb, usage.total_mb), (Some(1024), Some(16368)));
/// assert_eq!(usage.source, MemorySource::AmdSysfs);
/// # std::fs::remove_dir_all(&root)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn read_amd_sysfs(root: &Path, device: &GpuDevice) -> Result<MemoryUsage> {
    let devices = root.join("sys/bus/pci/devices");
    let dir = match device.pci_address() {
        Some(address) => devices.join(address.sysfs()),
        None => {
            let matching: Vec<_> = std::fs::read_dir(&devices)
                .map_err(|e| Error::io(&devices, e))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|dir| {
                    read_hex(&dir.join("vendor")) == Some(u64::from(device.vendor))
                        && read_hex(&dir.join("device")) == Some(u64::from(device.device_id))
                        && dir.join("mem_info_vram_total").exists()
                })
                .collect();
            match <[_; 1]>::try_from(matching) {
                Ok([dir]) => dir,
                Err(found) => {
                    return Err(gpu_error(
                        device,
                        format!(
                            "no PCI id, and {} cards with vendor {:#06x} device {:#06x} in {}",
                            found.len(),
                            device.vendor,
                            device.device_id,
                            devices.display()
                        ),
                    ));
                }
            }
        }
    };
    let read = |name: &str| -> Result<u64> {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        text.trim().parse().map_err(|_| {
            gpu_error(
                device,
                format!("{}: not a byte count: {:?}", path.display(), text.trim()),
            )
        })
    };
    let total = read("mem_info_vram_total")?;
    let used = read("mem_info_vram_used")?;
    Ok(MemoryUsage::from_bytes(
        Some(used),
        Some(total),
        MemorySource::AmdSysfs,
    ))
}

fn read_hex(path: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let text = text.trim();
    u64::from_str_radix(text.strip_prefix("0x").unwrap_or(text), 16).ok()
}

/// NVIDIA's management library, loaded at run time.
///
/// [`NvmlReader::new`] fails cleanly (an [`Error::Gpu`], never a panic)
/// where the driver is missing, and always where flowyml was built without
/// the `nvml` feature.
///
/// ```
/// use flowyml::gpu::NvmlReader;
///
/// match NvmlReader::new() {
///     Ok(nvml) => println!("NVML ready: {nvml:?}"),
///     Err(e) => println!("no NVML figures: {e}"),
/// }
/// ```
pub struct NvmlReader {
    #[cfg(feature = "nvml")]
    nvml: nvml_wrapper::Nvml,
}

impl NvmlReader {
    /// Loads the driver's library from the usual place.
    pub fn new() -> Result<Self> {
        Self::load(None)
    }

    /// Loads the library from `path` (mostly for tests).
    pub fn from_library(path: &Path) -> Result<Self> {
        Self::load(Some(path))
    }

    #[cfg(feature = "nvml")]
    fn load(path: Option<&Path>) -> Result<Self> {
        let mut builder = nvml_wrapper::Nvml::builder();
        if let Some(path) = path {
            builder.lib_path(path.as_os_str());
        }
        builder
            .init()
            .map(|nvml| NvmlReader { nvml })
            .map_err(|e| Error::Gpu {
                device: None,
                message: format!("NVML unavailable: {e}"),
            })
    }

    #[cfg(not(feature = "nvml"))]
    fn load(_path: Option<&Path>) -> Result<Self> {
        Err(Error::Gpu {
            device: None,
            message: "NVML unavailable: flowyml was built without the `nvml` feature".into(),
        })
    }

    /// Device-wide memory of the NVIDIA GPU at `device`'s PCI address.
    pub fn memory(&self, device: &GpuDevice) -> Result<MemoryUsage> {
        let address = device
            .pci_address()
            .ok_or_else(|| gpu_error(device, "NVML needs the PCI bus id, which is unknown"))?;
        self.memory_at(device, &address.nvml())
    }

    #[cfg(feature = "nvml")]
    fn memory_at(&self, device: &GpuDevice, nvml_id: &str) -> Result<MemoryUsage> {
        let info = self
            .nvml
            .device_by_pci_bus_id(nvml_id)
            .and_then(|d| d.memory_info())
            .map_err(|e| gpu_error(device, format!("NVML, PCI {nvml_id}: {e}")))?;
        Ok(MemoryUsage::from_bytes(
            Some(info.used),
            Some(info.total),
            MemorySource::Nvml,
        ))
    }

    #[cfg(not(feature = "nvml"))]
    fn memory_at(&self, device: &GpuDevice, _nvml_id: &str) -> Result<MemoryUsage> {
        Err(gpu_error(device, "built without the `nvml` feature"))
    }
}

impl fmt::Debug for NvmlReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NvmlReader")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_memory_respects_the_vulkan_budget() {
        let usage = MemoryUsage {
            used_mb: Some(100),
            total_mb: Some(8000),
            source: MemorySource::VulkanBudget { budget_mb: 6000 },
        };
        assert_eq!(usage.free_mb(), Some(5900));
        assert!(!usage.source.is_device_wide());
    }
}
