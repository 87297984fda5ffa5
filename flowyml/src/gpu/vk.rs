//! Vulkan memory figures through `ash`, on the adapter's raw physical device.
//!
//! The only `unsafe` of flowyml's GPU support. wgpu does not expose memory
//! heaps or budgets, so the adapter's Vulkan handles are borrowed through
//! `Adapter::as_hal` and queried read-only. The extension list is read here
//! rather than through wgpu-hal's capabilities because wgpu removes
//! `VK_EXT_memory_budget` from RADV's list (a Mesa bug affects *enabling*
//! it on a device, not querying it on the physical device).
#![allow(unsafe_code)]

use ash::vk;

/// What Vulkan says about the device-local heaps, in bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct VulkanMemory {
    pub heap_size: u64,
    /// `(usage, budget)` of this process, where `VK_EXT_memory_budget` exists.
    pub budget: Option<(u64, u64)>,
}

/// `None` for adapters of other backends or with no device-local heap.
pub(crate) fn vulkan_memory(adapter: &wgpu::Adapter) -> Option<VulkanMemory> {
    // SAFETY: the guard borrows wgpu's own adapter, which outlives this call;
    // nothing is destroyed through it and it is dropped before returning.
    let hal = unsafe { adapter.as_hal::<wgpu::hal::api::Vulkan>() }?;
    let shared = hal.shared_instance();
    let instance = shared.raw_instance();
    let phd = hal.raw_physical_device();

    // `vkGetPhysicalDeviceMemoryProperties2` is core in 1.1; both the
    // instance and the device must support that version to call it.
    let device_version = hal.physical_device_capabilities().properties().api_version;
    let has_budget = shared.instance_api_version() >= vk::API_VERSION_1_1
        && device_version >= vk::API_VERSION_1_1
        // SAFETY: `phd` is a live physical device of `instance`.
        && unsafe { instance.enumerate_device_extension_properties(phd) }
            .map(|exts| {
                exts.iter()
                    .any(|e| e.extension_name_as_c_str() == Ok(ash::ext::memory_budget::NAME))
            })
            .unwrap_or(false);

    let mut budget = vk::PhysicalDeviceMemoryBudgetPropertiesEXT::default();
    let props = if has_budget {
        let mut props2 = vk::PhysicalDeviceMemoryProperties2::default().push_next(&mut budget);
        // SAFETY: the instance is at least 1.1 (checked above), `phd` is
        // live, and `props2`'s chain holds only `budget`, which outlives it.
        unsafe { instance.get_physical_device_memory_properties2(phd, &mut props2) };
        props2.memory_properties
    } else {
        // SAFETY: `phd` is a live physical device of `instance`.
        unsafe { instance.get_physical_device_memory_properties(phd) }
    };

    let heaps = &props.memory_heaps[..(props.memory_heap_count as usize).min(vk::MAX_MEMORY_HEAPS)];
    let local: Vec<usize> = (0..heaps.len())
        .filter(|&i| heaps[i].flags.contains(vk::MemoryHeapFlags::DEVICE_LOCAL))
        .collect();
    if local.is_empty() {
        return None;
    }
    let heap_size = local.iter().map(|&i| heaps[i].size).sum();
    let budget = has_budget.then(|| {
        (
            local.iter().map(|&i| budget.heap_usage[i]).sum(),
            local.iter().map(|&i| budget.heap_budget[i]).sum(),
        )
    });
    Some(VulkanMemory { heap_size, budget })
}
