//! Per-run resources: a step holding one and panicking gives it back.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use flowyml::resource::{ResourceGuard, ResourceProvider, Resources, RunResource};
use flowyml::step::FnStep;
use flowyml::{ParallelExecutor, Pipeline, StepStatus};

/// One slot, as `FLOWYML_GPU_STEPS=1` gives the GPU.
struct OneSlot {
    free: Mutex<bool>,
    freed: Condvar,
}

impl RunResource for OneSlot {
    fn enter(&self, _step: &str) -> Box<dyn ResourceGuard + '_> {
        let mut free = self.free.lock().unwrap();
        while !*free {
            free = self.freed.wait(free).unwrap();
        }
        *free = false;
        Box::new(Held(self))
    }
}

/// The slot, held; dropping it frees the slot.
struct Held<'a>(&'a OneSlot);

impl ResourceGuard for Held<'_> {}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap() = true;
        self.0.freed.notify_all();
    }
}

static OPENED: AtomicUsize = AtomicUsize::new(0);

inventory::submit! {
    ResourceProvider {
        name: "test slot",
        open: |_: &mut Resources, _| {
            OPENED.fetch_add(1, Ordering::Relaxed);
            Some(Arc::new(OneSlot { free: Mutex::new(true), freed: Condvar::new() }) as Arc<dyn RunResource>)
        },
    }
}

#[test]
fn a_panicking_step_gives_its_resource_back() {
    let mut p = Pipeline::new("slots");
    p.add_step(
        FnStep::builder("slot_user_panics")
            .resource("test slot")
            .output::<u8>("a")
            .build(|_| panic!("boom")),
    )
    .add_step(
        // Holds the next slot user back until the panicking one has run.
        FnStep::builder("gate")
            .input::<u8>("x")
            .output::<u8>("gate")
            .build(|ctx| {
                std::thread::sleep(Duration::from_millis(100));
                ctx.set_output(0, 0u8);
                Ok(())
            }),
    )
    .add_step(
        FnStep::builder("slot_user_after")
            .resource("test slot")
            .input::<u8>("gate")
            .output::<u8>("b")
            .build(|ctx| {
                ctx.set_output(0, 1u8);
                Ok(())
            }),
    )
    .input("x", 0u8)
    .keep_going(true);
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        // The second slot user waits for the slot the first one held.
        let result = p.run_with(&ParallelExecutor::new(2).expect("pool"));
        let _ = done.send(result);
    });
    let result = finished
        .recv_timeout(Duration::from_secs(20))
        .expect("the run finished: the panicking step gave its slot back");
    let Err(flowyml::Error::StepFailed { result, .. }) = result else {
        panic!("expected the panicking step to fail the run");
    };
    assert_eq!(
        result.step("slot_user_after").map(|s| s.status),
        Some(StepStatus::Ran)
    );
    assert!(OPENED.load(Ordering::Relaxed) >= 1);
}
