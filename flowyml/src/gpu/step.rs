//! GPU steps in pipelines: the run's GPU resource.
//!
//! A run with a `#[step(gpu)]` step opens the best device once
//! ([`GpuResourceManager::best_device`]) and shares the [`Gpu`] between its
//! GPU steps, which read it as their `&Gpu` parameter. At most
//! `FLOWYML_GPU_STEPS` (default 1) GPU steps use the device at a time,
//! while CPU steps keep running beside them; a waiting GPU step lends its
//! worker to the pool rather than blocking it. Each GPU step's record notes
//! the device and its memory before and after.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use super::{Gpu, GpuResourceManager, MemoryUsage};
use crate::resource::{GPU, ResourceGuard, ResourceProvider, Resources, RunResource};

struct GpuResource {
    manager: &'static GpuResourceManager,
    gpu: Arc<Gpu>,
    index: usize,
    free_slots: AtomicUsize,
}

/// Enumeration loads drivers (tens of milliseconds): once per process.
fn manager() -> &'static GpuResourceManager {
    static MANAGER: OnceLock<GpuResourceManager> = OnceLock::new();
    MANAGER.get_or_init(GpuResourceManager::new)
}

fn open(resources: &mut Resources, disabled: bool) -> Option<Arc<dyn RunResource>> {
    if disabled {
        resources.insert_missing::<Gpu>("the GPU is turned off for this run (--no-gpu)");
        return None;
    }
    let manager = manager();
    let opened = manager
        .best_device()
        .and_then(|device| Ok((device.index, manager.open(device)?)));
    match opened {
        Ok((index, gpu)) => {
            let gpu = Arc::new(gpu);
            resources.insert(Arc::clone(&gpu));
            let slots = std::env::var("FLOWYML_GPU_STEPS")
                .ok()
                .and_then(|v| v.parse().ok())
                .filter(|&n| n > 0)
                .unwrap_or(1);
            Some(Arc::new(GpuResource {
                manager,
                gpu,
                index,
                free_slots: AtomicUsize::new(slots),
            }))
        }
        Err(e) => {
            resources.insert_missing::<Gpu>(e.to_string());
            None
        }
    }
}

fn describe(usage: &crate::error::Result<MemoryUsage>) -> String {
    match usage {
        Ok(MemoryUsage {
            used_mb: Some(used),
            total_mb,
            ..
        }) => match total_mb {
            Some(total) => format!("{used}/{total} MB"),
            None => format!("{used} MB"),
        },
        Ok(_) => "unknown".to_owned(),
        Err(e) => format!("unreadable ({e})"),
    }
}

impl RunResource for GpuResource {
    fn enter(&self, _step: &str) -> Box<dyn ResourceGuard + '_> {
        loop {
            let free = self.free_slots.load(Ordering::Acquire);
            if free > 0
                && self
                    .free_slots
                    .compare_exchange(free, free - 1, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            {
                break;
            }
            if rayon::yield_now() != Some(rayon::Yield::Executed) {
                std::thread::sleep(std::time::Duration::from_micros(100));
            }
        }
        Box::new(GpuSlot {
            resource: self,
            before: self.manager.memory_usage(self.index),
        })
    }
}

/// A GPU step's hold on one of the device's slots; dropping it frees the
/// slot, however the step ended.
struct GpuSlot<'a> {
    resource: &'a GpuResource,
    before: crate::error::Result<MemoryUsage>,
}

impl ResourceGuard for GpuSlot<'_> {
    fn notes(&mut self) -> Vec<String> {
        let r = self.resource;
        let after = r.manager.memory_usage(r.index);
        let source = after
            .as_ref()
            .map_or_else(|_| "unknown".to_owned(), |u| u.source.to_string());
        vec![
            format!("GPU: {}", r.gpu.info()),
            format!(
                "GPU memory used: {} before, {} after ({source})",
                describe(&self.before),
                describe(&after)
            ),
        ]
    }
}

impl Drop for GpuSlot<'_> {
    fn drop(&mut self) {
        self.resource.free_slots.fetch_add(1, Ordering::AcqRel);
    }
}

inventory::submit! {
    ResourceProvider {
        name: GPU,
        open,
    }
}
