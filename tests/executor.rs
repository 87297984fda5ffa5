//! ParallelExecutor: order, real parallelism, failures, nesting.

use flowyml::{Error, ParallelExecutor};
use std::collections::HashMap;
use std::thread;
use std::time::{Duration, Instant};

#[test]
fn map_preserves_input_order() {
    let executor = ParallelExecutor::new(4).expect("pool");
    let out = executor.map(
        |i: u64| {
            // Later items finish first, so order must come from the index.
            thread::sleep(Duration::from_micros(200 * (50 - i)));
            i * 10
        },
        0..50,
    );
    assert_eq!(out, (0..50).map(|i| i * 10).collect::<Vec<_>>());
}

#[test]
fn map_of_sleeps_on_four_workers_is_parallel() {
    let sleep = |_: u32| thread::sleep(Duration::from_millis(10));
    let start = Instant::now();
    (0..100).for_each(sleep);
    let sequential = start.elapsed();

    let executor = ParallelExecutor::new(4).expect("pool");
    let start = Instant::now();
    executor.map(sleep, 0..100);
    let parallel = start.elapsed();
    let ratio = parallel.as_secs_f64() / sequential.as_secs_f64();
    assert!(
        ratio <= 0.6,
        "4 workers took {ratio:.2} of the sequential time"
    );
}

#[test]
fn tasks_run_on_the_pool_threads() {
    let executor = ParallelExecutor::new(3).expect("pool");
    let names = executor.map(|_: u8| thread::current().name().map(str::to_owned), 0..30);
    assert!(names.iter().all(|n| {
        n.as_deref()
            .is_some_and(|n| n.starts_with("flowyml-worker-"))
    }));
    let handle = executor.submit(|| thread::current().name().map(str::to_owned));
    assert!(
        handle
            .join()
            .is_some_and(|n| n.starts_with("flowyml-worker-"))
    );
}

#[test]
fn a_panicking_task_is_reported_with_its_index_and_others_complete() {
    let executor = ParallelExecutor::new(2).expect("pool");
    let done = std::sync::atomic::AtomicUsize::new(0);
    let err = executor
        .try_map(
            |i: usize| -> Result<usize, String> {
                if i == 17 {
                    panic!("row 17 is corrupt");
                }
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(i)
            },
            0..40,
        )
        .unwrap_err();
    match err {
        Error::Task {
            task,
            message,
            panicked,
        } => {
            assert_eq!(task, "#17");
            assert_eq!(message, "row 17 is corrupt");
            assert!(panicked);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(done.load(std::sync::atomic::Ordering::SeqCst), 39);
    // The pool is not poisoned: it keeps working.
    assert_eq!(executor.map(|x: i32| x + 1, [1, 2]), vec![2, 3]);
}

#[test]
fn map_reraises_a_panic() {
    let executor = ParallelExecutor::new(2).expect("pool");
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        executor.map(|i: i32| if i == 2 { panic!("two") } else { i }, 0..4)
    }));
    assert!(caught.is_err());
}

#[test]
fn submit_join_and_wait_all_by_key() {
    let executor = ParallelExecutor::new(2).expect("pool");
    let slow = executor.submit(|| {
        thread::sleep(Duration::from_millis(50));
        1
    });
    assert!(!slow.is_finished());
    assert_eq!(slow.join(), 1);

    let futures = HashMap::from([
        ("data1", executor.submit(|| 10)),
        ("data2", executor.submit(|| 20)),
        ("model", executor.submit(|| 30)),
    ]);
    let results = executor.wait_all(futures);
    assert_eq!(
        results,
        HashMap::from([("data1", 10), ("data2", 20), ("model", 30)])
    );

    let futures = HashMap::from([
        ("good", executor.submit(|| 1)),
        ("bad", executor.submit(|| -> i32 { panic!("no such file") })),
    ]);
    let err = executor.try_wait_all(futures).unwrap_err();
    assert_eq!(err.to_string(), "task \"bad\" panicked: no such file");
}

#[test]
fn nested_map_and_join_on_a_one_worker_pool_do_not_deadlock() {
    let executor = ParallelExecutor::new(1).expect("pool");
    let inner = executor.clone();
    let outer = executor.submit(move || {
        let handles: Vec<_> = (0..4).map(|i| inner.submit(move || i * 2)).collect();
        let mapped: i32 = inner.map(|x: i32| x + 1, 0..10).into_iter().sum();
        mapped + handles.into_iter().map(|h| h.join()).sum::<i32>()
    });
    assert_eq!(outer.join(), 55 + 12);
}

#[test]
fn zero_workers_is_an_error() {
    assert!(matches!(ParallelExecutor::new(0), Err(Error::ZeroWorkers)));
}
