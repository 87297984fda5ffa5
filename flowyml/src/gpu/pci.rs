//! PCI addresses: how wgpu, NVML and sysfs name the same device.

/// A PCI address `domain:bus:device.function`, parsed so that the forms of
/// wgpu (`0000:01:00.0`), NVML (`00000000:01:00.0`) and sysfs compare equal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PciAddress {
    domain: u32,
    bus: u8,
    device: u8,
    function: u8,
}

impl PciAddress {
    /// `None` for an empty or malformed id (wgpu gives `""` where the
    /// backend does not know it).
    pub(crate) fn parse(id: &str) -> Option<Self> {
        let id = id.trim();
        let (rest, function) = id.rsplit_once('.')?;
        let mut parts = rest.rsplit(':');
        let device = u8::from_str_radix(parts.next()?, 16).ok()?;
        let bus = u8::from_str_radix(parts.next()?, 16).ok()?;
        let domain = match parts.next() {
            Some(d) => u32::from_str_radix(d, 16).ok()?,
            None => 0,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(PciAddress {
            domain,
            bus,
            device,
            function: u8::from_str_radix(function, 16).ok()?,
        })
    }

    /// The sysfs form, `0000:01:00.0`.
    pub(crate) fn sysfs(&self) -> String {
        format!(
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain, self.bus, self.device, self.function
        )
    }

    /// NVML's form, `00000000:01:00.0`.
    pub(crate) fn nvml(&self) -> String {
        format!(
            "{:08x}:{:02x}:{:02x}.{:x}",
            self.domain, self.bus, self.device, self.function
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_ids_of_every_tool_compare_equal() {
        let wgpu = PciAddress::parse("0000:01:00.0").unwrap();
        assert_eq!(PciAddress::parse("00000000:01:00.0"), Some(wgpu));
        assert_eq!(PciAddress::parse("01:00.0"), Some(wgpu));
        assert_eq!(wgpu.nvml(), "00000000:01:00.0");
        assert_eq!(
            PciAddress::parse("0000:c1:1f.7").unwrap().sysfs(),
            "0000:c1:1f.7"
        );
        for bad in ["", "llvmpipe", "0000:01:00", "1:2:3:4.0", "zz:00.0"] {
            assert_eq!(PciAddress::parse(bad), None, "{bad:?}");
        }
    }
}
