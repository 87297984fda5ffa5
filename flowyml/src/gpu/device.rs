//! One [`GpuDevice`] per physical GPU, merged from wgpu's adapters.
//!
//! wgpu lists an adapter per backend, so one card shows up as Vulkan *and*
//! GL (and DX12 on Windows). Two adapters are the same GPU when their PCI
//! addresses agree; where a backend does not report the address (GL), when
//! vendor, device id and name agree. Two adapters of one backend are never
//! merged: that is how two identical cards without PCI ids stay apart.

use std::fmt;

use wgpu::{Backend, DeviceType};

use super::pci::PciAddress;

/// A physical GPU (or a CPU adapter such as lavapipe) that can run compute
/// shaders, as [`GpuResourceManager::devices`](super::GpuResourceManager::devices)
/// lists it.
///
/// The fields are plain data so that tests and tools can build device lists
/// of their own (see [`GpuDevice::synthetic`]).
///
/// ```
/// use flowyml::gpu::{GpuDevice, wgpu::DeviceType};
///
/// let card = GpuDevice::synthetic(0, "NVIDIA GeForce RTX 4090", DeviceType::DiscreteGpu);
/// assert_eq!(card.to_string(), "#0 NVIDIA GeForce RTX 4090 (discrete GPU, Vulkan)");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GpuDevice {
    /// Position in the manager's device list: the index that
    /// `FLOWYML_GPU=<index>` and [`DevicePreference::Index`](super::DevicePreference::Index) name.
    pub index: usize,
    /// The adapter's name, e.g. `llvmpipe (LLVM 15.0.6, 256 bits)`.
    pub name: String,
    /// PCI vendor id (`0x10de` NVIDIA, `0x1002` AMD, `0x8086` Intel), `0` where unknown.
    pub vendor: u32,
    /// PCI device id, `0` where unknown.
    pub device_id: u32,
    /// Discrete, integrated, virtual, CPU or other.
    pub device_type: DeviceType,
    /// The backend that flowyml opens the device through: the best of
    /// [`backends`](Self::backends).
    pub backend: Backend,
    /// Every backend the device was seen through, best first
    /// (Vulkan > Metal > DX12 > GL).
    pub backends: Vec<Backend>,
    /// PCI address (`0000:01:00.0`) where a backend reported it.
    pub pci_bus_id: Option<String>,
    /// Driver name, e.g. `llvmpipe`, `NVIDIA`.
    pub driver: String,
    /// Driver version details.
    pub driver_info: String,
}

impl GpuDevice {
    /// A device that no adapter backs, for ranking and reader tests: Vulkan,
    /// unknown vendor, no PCI id. [`open`](super::GpuResourceManager::open)
    /// refuses it with a clear error.
    pub fn synthetic(index: usize, name: &str, device_type: DeviceType) -> Self {
        GpuDevice {
            index,
            name: name.to_owned(),
            vendor: 0,
            device_id: 0,
            device_type,
            backend: Backend::Vulkan,
            backends: vec![Backend::Vulkan],
            pci_bus_id: None,
            driver: String::new(),
            driver_info: String::new(),
        }
    }

    pub(crate) fn from_info(index: usize, info: &wgpu::AdapterInfo) -> Self {
        GpuDevice {
            index,
            name: info.name.clone(),
            vendor: info.vendor,
            device_id: info.device,
            device_type: info.device_type,
            backend: info.backend,
            backends: vec![info.backend],
            pci_bus_id: Some(info.device_pci_bus_id.clone()).filter(|id| !id.is_empty()),
            driver: info.driver.clone(),
            driver_info: info.driver_info.clone(),
        }
    }

    pub(crate) fn pci_address(&self) -> Option<PciAddress> {
        self.pci_bus_id.as_deref().and_then(PciAddress::parse)
    }
}

impl fmt::Display for GpuDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#{} {} ({}, {})",
            self.index,
            self.name,
            device_type_name(self.device_type),
            backend_name(self.backend)
        )
    }
}

/// Lower-case words for a device type, as the device table shows them.
pub(crate) fn device_type_name(t: DeviceType) -> &'static str {
    match t {
        DeviceType::DiscreteGpu => "discrete GPU",
        DeviceType::IntegratedGpu => "integrated GPU",
        DeviceType::VirtualGpu => "virtual GPU",
        DeviceType::Cpu => "CPU",
        DeviceType::Other => "other",
    }
}

pub(crate) fn backend_name(b: Backend) -> &'static str {
    match b {
        Backend::Vulkan => "Vulkan",
        Backend::Metal => "Metal",
        Backend::Dx12 => "DX12",
        Backend::Gl => "GL",
        Backend::BrowserWebGpu => "WebGPU",
        Backend::Noop => "noop",
    }
}

/// Lower is better: the backend a merged device is opened through.
pub(crate) fn backend_rank(b: Backend) -> u8 {
    match b {
        Backend::Vulkan => 0,
        Backend::Metal => 1,
        Backend::Dx12 => 2,
        Backend::Gl => 3,
        Backend::BrowserWebGpu => 4,
        Backend::Noop => 5,
    }
}

fn same_gpu(a: &wgpu::AdapterInfo, b: &wgpu::AdapterInfo) -> bool {
    if a.backend == b.backend {
        return false;
    }
    match (
        PciAddress::parse(&a.device_pci_bus_id),
        PciAddress::parse(&b.device_pci_bus_id),
    ) {
        (Some(x), Some(y)) => x == y,
        _ => {
            let ids_agree = |x: u32, y: u32| x == 0 || y == 0 || x == y;
            ids_agree(a.vendor, b.vendor)
                && ids_agree(a.device, b.device)
                && a.name.trim().eq_ignore_ascii_case(b.name.trim())
        }
    }
}

/// Groups adapters by physical GPU: each group lists indices into `infos`,
/// best backend first; groups keep the order of their best adapter after
/// sorting by backend, so Vulkan's order wins where it exists.
pub(crate) fn group_adapters(infos: &[wgpu::AdapterInfo]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..infos.len()).collect();
    // Stable: within a backend, wgpu's (the driver's) order is kept.
    order.sort_by_key(|&i| backend_rank(infos[i].backend));
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for i in order {
        let existing = groups.iter_mut().find(|group| {
            group.iter().all(|&j| infos[j].backend != infos[i].backend)
                && same_gpu(&infos[group[0]], &infos[i])
        });
        match existing {
            Some(group) => group.push(i),
            None => groups.push(vec![i]),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, backend: Backend, vendor: u32, pci: &str) -> wgpu::AdapterInfo {
        wgpu::AdapterInfo {
            name: name.into(),
            vendor,
            device: 0x2684,
            device_pci_bus_id: pci.into(),
            ..wgpu::AdapterInfo::new(DeviceType::DiscreteGpu, backend)
        }
    }

    #[test]
    fn one_gpu_seen_through_two_backends_is_one_device_opened_via_vulkan() {
        let infos = [
            info("RTX 4090", Backend::Gl, 0, ""),
            info("RTX 4090", Backend::Vulkan, 0x10de, "0000:01:00.0"),
        ];
        assert_eq!(group_adapters(&infos), vec![vec![1, 0]]);
    }

    #[test]
    fn pci_addresses_decide_when_both_have_one() {
        let infos = [
            info("RTX 4090", Backend::Vulkan, 0x10de, "0000:01:00.0"),
            info("RTX 4090", Backend::Dx12, 0x10de, "0000:02:00.0"),
            info("RTX 4090", Backend::Dx12, 0x10de, "0000:01:00.0"),
        ];
        assert_eq!(group_adapters(&infos), vec![vec![0, 2], vec![1]]);
    }

    #[test]
    fn identical_cards_of_one_backend_stay_apart() {
        let infos = [
            info("RTX 4090", Backend::Vulkan, 0x10de, ""),
            info("RTX 4090", Backend::Vulkan, 0x10de, ""),
            info("RTX 4090", Backend::Gl, 0x10de, ""),
        ];
        assert_eq!(group_adapters(&infos), vec![vec![0, 2], vec![1]]);
    }
}
