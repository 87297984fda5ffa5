//! Best-device ranking and the overrides that bypass it.
//!
//! Ranking is a pure function of the device list and its memory figures so
//! that it can be tested on synthetic lists: device type first (discrete >
//! integrated > other > virtual > CPU), then most free memory, then most
//! total memory, then enumeration order. Unknown memory ranks below any
//! known figure, because a scheduler cannot plan with it.
//!
//! An override names a device by index or by a case-insensitive substring
//! of its name. It comes, first match wins, from the API
//! ([`GpuResourceManager::with_preference`](super::GpuResourceManager::with_preference)),
//! from `FLOWYML_GPU`, or from wgpu's own `WGPU_ADAPTER_NAME`. An override
//! that matches nothing is an error: silently taking another GPU would hide
//! a typo.

use std::cmp::Reverse;
use std::fmt;
use std::str::FromStr;

use wgpu::DeviceType;

use super::{GpuDevice, MemoryUsage};
use crate::error::{Error, Result};

/// The environment variable that picks a device by index or name.
pub const FLOWYML_GPU: &str = "FLOWYML_GPU";

/// A device named by the user rather than chosen by ranking.
///
/// Parsed from a string: digits are an index, anything else a name
/// substring.
///
/// ```
/// use flowyml::gpu::{DevicePreference, GpuDevice, wgpu::DeviceType};
///
/// let lavapipe = GpuDevice::synthetic(1, "llvmpipe (LLVM 15.0.6, 256 bits)", DeviceType::Cpu);
/// assert!("1".parse::<DevicePreference>()?.matches(&lavapipe));
/// assert!("LLVMpipe".parse::<DevicePreference>()?.matches(&lavapipe));
/// assert!(!"nvidia".parse::<DevicePreference>()?.matches(&lavapipe));
/// # Ok::<(), flowyml::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DevicePreference {
    /// The device at this index of the device list.
    Index(usize),
    /// The best-ranked device whose name contains this, ignoring case.
    Name(String),
}

impl DevicePreference {
    /// Whether `device` is one this preference names.
    pub fn matches(&self, device: &GpuDevice) -> bool {
        match self {
            DevicePreference::Index(i) => device.index == *i,
            DevicePreference::Name(part) => {
                device.name.to_lowercase().contains(&part.to_lowercase())
            }
        }
    }

    /// The preference the environment gives: `FLOWYML_GPU`, else
    /// `WGPU_ADAPTER_NAME` (a name, as wgpu reads it), with the variable's
    /// name for error messages. Empty values count as unset.
    pub fn from_env() -> Option<(DevicePreference, &'static str)> {
        let var = |name: &'static str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .map(|v| (v, name))
        };
        if let Some((value, name)) = var(FLOWYML_GPU) {
            let pref = value.parse().unwrap_or(DevicePreference::Name(value));
            return Some((pref, name));
        }
        var("WGPU_ADAPTER_NAME")
            .map(|(v, name)| (DevicePreference::Name(v.trim().to_owned()), name))
    }
}

impl FromStr for DevicePreference {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        if s.is_empty() {
            return Err(Error::Gpu {
                device: None,
                message: "an empty device preference names no device".into(),
            });
        }
        Ok(match s.parse::<usize>() {
            Ok(i) => DevicePreference::Index(i),
            Err(_) => DevicePreference::Name(s.to_owned()),
        })
    }
}

impl fmt::Display for DevicePreference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DevicePreference::Index(i) => write!(f, "device #{i}"),
            DevicePreference::Name(n) => write!(f, "name containing {n:?}"),
        }
    }
}

/// Lower is better.
fn type_rank(t: DeviceType) -> u8 {
    match t {
        DeviceType::DiscreteGpu => 0,
        DeviceType::IntegratedGpu => 1,
        DeviceType::Other => 2,
        DeviceType::VirtualGpu => 3,
        DeviceType::Cpu => 4,
    }
}

/// Indices of `devices`, best first. `memory[i]` is the memory of
/// `devices[i]`; a shorter `memory` counts as unknown.
///
/// ```
/// use flowyml::gpu::{rank_devices, GpuDevice, MemorySource, MemoryUsage, wgpu::DeviceType};
///
/// let devices = [
///     GpuDevice::synthetic(0, "llvmpipe", DeviceType::Cpu),
///     GpuDevice::synthetic(1, "busy card", DeviceType::DiscreteGpu),
///     GpuDevice::synthetic(2, "idle card", DeviceType::DiscreteGpu),
/// ];
/// let mem = |used, total| MemoryUsage { used_mb: Some(used), total_mb: Some(total), source: MemorySource::Nvml };
/// let memory = [mem(1_000, 64_000), mem(7_000, 8_000), mem(1_000, 8_000)];
/// assert_eq!(rank_devices(&devices, &memory), [2, 1, 0]);
/// ```
pub fn rank_devices(devices: &[GpuDevice], memory: &[MemoryUsage]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..devices.len()).collect();
    let usage = |i: usize| memory.get(i).copied().unwrap_or(MemoryUsage::UNKNOWN);
    // `Option` orders `None` first, so `Reverse` puts unknown figures last.
    order.sort_by_key(|&i| {
        (
            type_rank(devices[i].device_type),
            Reverse(usage(i).free_mb()),
            Reverse(usage(i).total_mb),
            i,
        )
    });
    order
}

/// The device to use: the first device `preference` matches, in ranking
/// order, or the best-ranked device when there is no preference.
///
/// Errors: [`Error::NoGpu`] for an empty list, [`Error::Gpu`] when the
/// preference matches no device (the message lists the devices).
///
/// ```
/// use flowyml::gpu::{choose_device, DevicePreference, GpuDevice, wgpu::DeviceType};
///
/// let devices = [
///     GpuDevice::synthetic(0, "Intel(R) Graphics", DeviceType::IntegratedGpu),
///     GpuDevice::synthetic(1, "llvmpipe", DeviceType::Cpu),
/// ];
/// assert_eq!(choose_device(&devices, &[], None)?.index, 0);
/// let pref = DevicePreference::Name("pipe".into());
/// assert_eq!(choose_device(&devices, &[], Some(&pref))?.index, 1);
/// assert!(choose_device(&devices, &[], Some(&DevicePreference::Index(7))).is_err());
/// # Ok::<(), flowyml::Error>(())
/// ```
pub fn choose_device<'a>(
    devices: &'a [GpuDevice],
    memory: &[MemoryUsage],
    preference: Option<&DevicePreference>,
) -> Result<&'a GpuDevice> {
    if devices.is_empty() {
        return Err(Error::NoGpu {
            reason: "the device list is empty".into(),
        });
    }
    let ranked = rank_devices(devices, memory);
    let chosen = match preference {
        None => ranked.first(),
        Some(pref) => ranked.iter().find(|&&i| pref.matches(&devices[i])),
    };
    chosen.map(|&i| &devices[i]).ok_or_else(|| {
        let listed: Vec<String> = devices.iter().map(ToString::to_string).collect();
        Error::Gpu {
            device: None,
            message: format!(
                "{}; the devices are: {}",
                match preference {
                    Some(DevicePreference::Index(i)) => format!("there is no device #{i}"),
                    Some(DevicePreference::Name(n)) => format!("no device's name contains {n:?}"),
                    None => "no device".to_owned(),
                },
                listed.join(", ")
            ),
        }
    })
}
