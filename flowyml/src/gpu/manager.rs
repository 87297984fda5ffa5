//! [`GpuResourceManager`]: the devices, their memory, the best of them.

use std::fmt;
use std::path::PathBuf;
use std::sync::OnceLock;

use super::context::Gpu;
use super::device::{GpuDevice, backend_name, device_type_name};
use super::memory::{MemorySource, MemoryUsage, NvmlReader, read_amd_sysfs, read_meminfo};
use super::select::{DevicePreference, choose_device, rank_devices};
use crate::error::{Error, Result};

const NVIDIA: u32 = 0x10de;
const AMD: u32 = 0x1002;

/// The devices wgpu can run compute shaders on, their memory, and the best
/// of them. See the [module docs](super).
pub struct GpuResourceManager {
    backends: wgpu::Backends,
    devices: Vec<GpuDevice>,
    /// `adapters[i]` opens `devices[i]`.
    adapters: Vec<wgpu::Adapter>,
    /// Adapters dropped for lacking compute shaders, for error messages.
    dropped: Vec<String>,
    preference: Option<(DevicePreference, String)>,
    system_root: PathBuf,
    nvml: OnceLock<Option<NvmlReader>>,
    best: OnceLock<std::result::Result<usize, Error>>,
}

impl GpuResourceManager {
    /// Enumerates the adapters of the backends wgpu's `WGPU_BACKEND` names
    /// (all by default), with the override of `FLOWYML_GPU` or
    /// `WGPU_ADAPTER_NAME` if set. Never fails: with no adapter the manager
    /// is empty and [`best_device`](Self::best_device) says why.
    pub fn new() -> Self {
        Self::enumerate(wgpu::InstanceDescriptor::new_without_display_handle_from_env())
    }

    /// Enumerates the adapters of `backends` only, whatever `WGPU_BACKEND`
    /// says.
    ///
    /// ```
    /// use flowyml::gpu::{GpuResourceManager, wgpu::Backends};
    ///
    /// # if cfg!(target_os = "linux") {
    /// let none = GpuResourceManager::with_backends(Backends::METAL); // not on Linux
    /// assert!(!none.is_available());
    /// let err = none.best_device().unwrap_err();
    /// assert!(matches!(err, flowyml::Error::NoGpu { .. }), "{err}");
    /// # }
    /// ```
    pub fn with_backends(backends: wgpu::Backends) -> Self {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        desc.backends = backends;
        Self::enumerate(desc)
    }

    /// Uses the device `preference` names instead of the best-ranked one;
    /// beats the environment variables.
    ///
    /// ```
    /// use flowyml::gpu::{DevicePreference, GpuResourceManager};
    ///
    /// let gpu = GpuResourceManager::new().with_preference(DevicePreference::Name("no such GPU".into()));
    /// assert!(gpu.best_device().is_err()); // a clear error, not another device
    /// ```
    pub fn with_preference(mut self, preference: DevicePreference) -> Self {
        self.preference = Some((preference, "the API".to_owned()));
        self.best = OnceLock::new();
        self
    }

    fn enumerate(desc: wgpu::InstanceDescriptor) -> Self {
        let backends = desc.backends;
        let instance = wgpu::Instance::new(desc);
        let all = pollster::block_on(instance.enumerate_adapters(backends));
        let (usable, unusable): (Vec<_>, Vec<_>) = all.into_iter().partition(|a| {
            a.get_downlevel_capabilities()
                .flags
                .contains(wgpu::DownlevelFlags::COMPUTE_SHADERS)
        });
        let dropped = unusable
            .iter()
            .map(|a| {
                let info = a.get_info();
                format!("{} ({})", info.name, backend_name(info.backend))
            })
            .collect();
        let infos: Vec<wgpu::AdapterInfo> = usable.iter().map(wgpu::Adapter::get_info).collect();
        let mut slots: Vec<Option<wgpu::Adapter>> = usable.into_iter().map(Some).collect();
        let mut devices = Vec::new();
        let mut adapters = Vec::new();
        for (index, group) in super::device::group_adapters(&infos)
            .into_iter()
            .enumerate()
        {
            let mut dev = GpuDevice::from_info(index, &infos[group[0]]);
            dev.backends = group.iter().map(|&i| infos[i].backend).collect();
            // A backend without the PCI id (GL) borrows it from another.
            if dev.pci_bus_id.is_none() {
                dev.pci_bus_id = group
                    .iter()
                    .map(|&i| infos[i].device_pci_bus_id.clone())
                    .find(|id| !id.is_empty());
            }
            devices.push(dev);
            adapters.push(
                slots[group[0]]
                    .take()
                    .expect("each adapter is in one group"),
            );
        }
        let preference = DevicePreference::from_env().map(|(p, var)| (p, var.to_owned()));
        GpuResourceManager {
            backends,
            devices,
            adapters,
            dropped,
            preference,
            system_root: PathBuf::from("/"),
            nvml: OnceLock::new(),
            best: OnceLock::new(),
        }
    }

    /// Whether any device can run compute shaders.
    pub fn is_available(&self) -> bool {
        !self.devices.is_empty()
    }

    /// How many devices there are (physical GPUs, not adapters).
    pub fn device_count(&self) -> usize {
        self.devices.len()
    }

    /// Every device, in enumeration order (`devices()[i].index == i`).
    pub fn devices(&self) -> &[GpuDevice] {
        &self.devices
    }

    /// The override in force and where it came from (`the API`,
    /// `FLOWYML_GPU`, `WGPU_ADAPTER_NAME`), if any.
    pub fn preference(&self) -> Option<(&DevicePreference, &str)> {
        self.preference
            .as_ref()
            .map(|(p, origin)| (p, origin.as_str()))
    }

    /// The device to use: the override's, else the best-ranked. Chosen on
    /// the first call and cached (later calls take nanoseconds).
    ///
    /// Errors: [`Error::NoGpu`] saying why there is no device;
    /// [`Error::Gpu`] when an override matches none.
    pub fn best_device(&self) -> Result<&GpuDevice> {
        let chosen = self.best.get_or_init(|| {
            if self.devices.is_empty() {
                return Err(self.no_gpu());
            }
            let memory = self.all_memory();
            let preference = self.preference.as_ref();
            choose_device(&self.devices, &memory, preference.map(|(p, _)| p))
                .map(|d| d.index)
                .map_err(|e| match (e, preference) {
                    (Error::Gpu { device, message }, Some((_, origin))) => Error::Gpu {
                        device,
                        message: format!("{message} (preference from {origin})"),
                    },
                    (e, _) => e,
                })
        });
        match chosen {
            Ok(i) => Ok(&self.devices[*i]),
            Err(e) => Err(clone_error(e)),
        }
    }

    /// Every device with its memory now, best first (ignores overrides).
    pub fn ranked_devices(&self) -> Vec<(&GpuDevice, MemoryUsage)> {
        let memory = self.all_memory();
        rank_devices(&self.devices, &memory)
            .into_iter()
            .map(|i| (&self.devices[i], memory[i]))
            .collect()
    }

    fn all_memory(&self) -> Vec<MemoryUsage> {
        (0..self.devices.len()).map(|i| self.memory_of(i)).collect()
    }

    fn no_gpu(&self) -> Error {
        let mut reason = format!("wgpu found no adapter on backends {:?}", self.backends);
        if !self.dropped.is_empty() {
            reason.push_str(&format!(
                "; adapters without compute shaders: {}",
                self.dropped.join(", ")
            ));
        }
        if cfg!(target_os = "linux") && self.backends.contains(wgpu::Backends::VULKAN) {
            reason.push_str(
                " (install a Vulkan driver; mesa-vulkan-drivers provides lavapipe, which runs on the CPU)",
            );
        }
        Error::NoGpu { reason }
    }

    fn lookup(&self, device: impl DeviceRef) -> Result<usize> {
        device.index_in(&self.devices).ok_or_else(|| Error::Gpu {
            device: Some(device.describe()),
            message: format!(
                "not a device of this manager, which has {} device(s)",
                self.devices.len()
            ),
        })
    }

    /// The memory of `device` (an index or a [`GpuDevice`] of this
    /// manager), from the best source available. Errors only for a device
    /// that is not this manager's; an unknown figure is `None`.
    pub fn memory_usage(&self, device: impl DeviceRef) -> Result<MemoryUsage> {
        Ok(self.memory_of(self.lookup(device)?))
    }

    /// Free memory of `device` in MiB ([`MemoryUsage::free_mb`]): `None`
    /// where the source does not know it.
    pub fn free_memory(&self, device: impl DeviceRef) -> Result<Option<u64>> {
        Ok(self.memory_usage(device)?.free_mb())
    }

    fn memory_of(&self, index: usize) -> MemoryUsage {
        let device = &self.devices[index];
        let attempt = |what: &str, result: Result<MemoryUsage>| match result {
            Ok(usage) => Some(usage),
            Err(e) => {
                tracing::debug!(device = %device.name, "{what}: {e}");
                None
            }
        };
        if device.vendor == NVIDIA
            && let Some(nvml) = self.nvml()
            && let Some(usage) = attempt("NVML", nvml.memory(device))
        {
            return usage;
        }
        if device.vendor == AMD
            && let Some(usage) = attempt("amdgpu sysfs", read_amd_sysfs(&self.system_root, device))
        {
            return usage;
        }
        if device.device_type == wgpu::DeviceType::Cpu
            && let Some(usage) = attempt("/proc/meminfo", read_meminfo(&self.system_root))
        {
            return usage;
        }
        vulkan_usage(&self.adapters[index]).unwrap_or(MemoryUsage::UNKNOWN)
    }

    /// What Vulkan alone says about `device`'s memory, whatever source
    /// [`memory_usage`](Self::memory_usage) prefers: `None` for devices
    /// without a Vulkan adapter. Useful beside a device-wide source, as
    /// [`MemorySource::VulkanBudget`] counts this process's use.
    pub fn vulkan_memory_usage(&self, device: impl DeviceRef) -> Result<Option<MemoryUsage>> {
        Ok(vulkan_usage(&self.adapters[self.lookup(device)?]))
    }

    fn nvml(&self) -> Option<&NvmlReader> {
        self.nvml
            .get_or_init(|| match NvmlReader::new() {
                Ok(nvml) => Some(nvml),
                Err(e) => {
                    tracing::debug!("{e}");
                    None
                }
            })
            .as_ref()
    }

    /// Opens `device` for compute: requests a wgpu device with the
    /// adapter's full limits. Open each device once and share the [`Gpu`].
    pub fn open(&self, device: impl DeviceRef) -> Result<Gpu> {
        let index = self.lookup(device)?;
        let info = self.devices[index].clone();
        let adapter = &self.adapters[index];
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("flowyml"),
            required_limits: adapter.limits(),
            ..Default::default()
        }))
        .map_err(|e| Error::Gpu {
            device: Some(info.name.clone()),
            message: format!("opening the device: {e}"),
        })?;
        Ok(Gpu::new(device, queue, info))
    }

    /// Prints [the device table](#impl-Display-for-GpuResourceManager) to
    /// standard output.
    pub fn print_memory_summary(&self) {
        println!("{self}");
    }
}

impl Default for GpuResourceManager {
    fn default() -> Self {
        Self::new()
    }
}

fn vulkan_usage(adapter: &wgpu::Adapter) -> Option<MemoryUsage> {
    #[cfg(any(
        windows,
        target_os = "linux",
        target_os = "android",
        target_os = "freebsd"
    ))]
    {
        const MIB: u64 = 1024 * 1024;
        let vk = super::vk::vulkan_memory(adapter)?;
        Some(match vk.budget {
            Some((usage, budget)) => MemoryUsage {
                used_mb: Some(usage / MIB),
                total_mb: Some(vk.heap_size / MIB),
                source: MemorySource::VulkanBudget {
                    budget_mb: budget / MIB,
                },
            },
            None => MemoryUsage {
                used_mb: None,
                total_mb: Some(vk.heap_size / MIB),
                source: MemorySource::VulkanHeap,
            },
        })
    }
    #[cfg(not(any(
        windows,
        target_os = "linux",
        target_os = "android",
        target_os = "freebsd"
    )))]
    {
        let _ = adapter;
        None
    }
}

/// [`Error`] holds no `Clone` sources in its GPU variants; the cached
/// choice is rebuilt for each caller.
fn clone_error(e: &Error) -> Error {
    match e {
        Error::NoGpu { reason } => Error::NoGpu {
            reason: reason.clone(),
        },
        Error::Gpu { device, message } => Error::Gpu {
            device: device.clone(),
            message: message.clone(),
        },
        other => Error::Gpu {
            device: None,
            message: other.to_string(),
        },
    }
}

/// The device table: index, name, type, backends, PCI id, memory and its
/// source, with the best device starred.
///
/// ```
/// use flowyml::gpu::GpuResourceManager;
///
/// let table = GpuResourceManager::new().to_string();
/// assert!(table.contains("best:") || table.contains("no GPU"));
/// ```
impl fmt::Display for GpuResourceManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let best = match self.best_device() {
            Ok(device) => device.index,
            Err(e) if self.devices.is_empty() => return write!(f, "{e}"),
            Err(_) => usize::MAX,
        };
        let figure = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
        let rows: Vec<[String; 9]> = self
            .devices
            .iter()
            .map(|d| {
                let m = self.memory_of(d.index);
                let backends: Vec<&str> = d.backends.iter().map(|&b| backend_name(b)).collect();
                [
                    format!("{}{}", if d.index == best { "*" } else { " " }, d.index),
                    d.name.clone(),
                    device_type_name(d.device_type).to_owned(),
                    backends.join("+"),
                    d.pci_bus_id.clone().unwrap_or_else(|| "-".to_owned()),
                    figure(m.used_mb),
                    figure(m.total_mb),
                    figure(m.free_mb()),
                    m.source.to_string(),
                ]
            })
            .collect();
        let header = [
            " #",
            "device",
            "type",
            "backends",
            "PCI",
            "used MB",
            "total MB",
            "free MB",
            "memory source",
        ]
        .map(str::to_owned);
        let mut widths = header.clone().map(|h| h.chars().count());
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        for row in std::iter::once(&header).chain(&rows) {
            let line: Vec<String> = row
                .iter()
                .zip(widths)
                .enumerate()
                .map(|(col, (cell, w))| {
                    // Memory figures are right-aligned, like numbers.
                    if (5..8).contains(&col) {
                        format!("{cell:>w$}")
                    } else {
                        format!("{cell:<w$}")
                    }
                })
                .collect();
            writeln!(f, "{}", line.join("  ").trim_end())?;
        }
        match self.best_device() {
            Ok(device) => {
                let how = match self.preference() {
                    Some((p, origin)) => format!("{p} from {origin}"),
                    None => "ranking".to_owned(),
                };
                write!(f, "best: {device} (chosen by {how})")
            }
            Err(e) => write!(f, "best: none ({e})"),
        }
    }
}

impl fmt::Debug for GpuResourceManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GpuResourceManager")
            .field("backends", &self.backends)
            .field("devices", &self.devices)
            .field("preference", &self.preference)
            .finish_non_exhaustive()
    }
}

/// A device of a [`GpuResourceManager`], named by index or by a
/// [`GpuDevice`] it listed, as [`memory_usage`](GpuResourceManager::memory_usage)
/// and [`open`](GpuResourceManager::open) accept.
pub trait DeviceRef {
    /// The device's index in `devices`, if it is one of them.
    fn index_in(&self, devices: &[GpuDevice]) -> Option<usize>;
    /// How error messages name it.
    fn describe(&self) -> String;
}

impl DeviceRef for usize {
    fn index_in(&self, devices: &[GpuDevice]) -> Option<usize> {
        (*self < devices.len()).then_some(*self)
    }

    fn describe(&self) -> String {
        format!("#{self}")
    }
}

impl DeviceRef for &GpuDevice {
    fn index_in(&self, devices: &[GpuDevice]) -> Option<usize> {
        devices
            .get(self.index)
            .filter(|d| *d == *self)
            .map(|d| d.index)
    }

    fn describe(&self) -> String {
        self.to_string()
    }
}
