//! GPU resource management on real wgpu adapters (lavapipe in CI).
//!
//! Tests that need an adapter print why and return early where none exists,
//! unless `FLOWYML_REQUIRE_GPU=1`, where they fail instead. Ranking and the
//! memory readers run everywhere, on synthetic device lists and fake trees.
#![cfg(feature = "gpu")]

use std::io::Write as _;
use std::path::Path;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use flowyml::Error;
use flowyml::gpu::wgpu::{Backend, Backends, DeviceType};
use flowyml::gpu::{
    DevicePreference, Gpu, GpuDevice, GpuResourceManager, MemorySource, MemoryUsage, NvmlReader,
    Workgroups, choose_device, rank_devices, read_amd_sysfs, read_meminfo,
};
use flowyml_workspace::gpu_kernels::{
    ADD_ONE_WGSL, AXPY_WGSL, axpy_cpu, axpy_workgroups, matmul_cpu, matmul_gpu, matmul_kernel,
    random_f32, random_matrix,
};

/// One enumeration for the whole test binary: it loads every driver.
static MANAGER: LazyLock<GpuResourceManager> = LazyLock::new(GpuResourceManager::new);
/// The best device, opened once and shared, as a scheduler would.
static GPU: LazyLock<Result<Gpu, String>> = LazyLock::new(|| {
    let device = MANAGER.best_device().map_err(|e| e.to_string())?;
    MANAGER.open(device).map_err(|e| e.to_string())
});

/// Reports a test that cannot run here: a skip, or a failure where
/// `FLOWYML_REQUIRE_GPU=1` says that an adapter must exist.
fn skip(test: &str, why: &str) {
    if std::env::var("FLOWYML_REQUIRE_GPU").is_ok_and(|v| v.trim() == "1") {
        panic!("{test}: FLOWYML_REQUIRE_GPU=1, but {why}");
    }
    // Straight to stderr: the harness captures `eprintln!` of passing tests.
    let _ = writeln!(std::io::stderr(), "skipping {test}: {why}");
}

/// The shared opened device, or `None` after [`skip`].
fn gpu(test: &str) -> Option<&'static Gpu> {
    match &*GPU {
        Ok(gpu) => Some(gpu),
        Err(why) => {
            skip(test, why);
            None
        }
    }
}

fn lavapipe_installed() -> bool {
    std::fs::read_dir("/usr/share/vulkan/icd.d").is_ok_and(|dir| {
        dir.flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("lvp_icd"))
    })
}

#[test]
fn enumeration_lists_one_device_per_gpu_and_finds_lavapipe() {
    let devices = MANAGER.devices();
    if devices.is_empty() {
        let why = MANAGER.best_device().unwrap_err().to_string();
        return skip("enumeration", &why);
    }
    assert!(MANAGER.is_available());
    assert_eq!(MANAGER.device_count(), devices.len());
    for (i, d) in devices.iter().enumerate() {
        assert_eq!(d.index, i, "{d}");
        assert_eq!(
            d.backends.first(),
            Some(&d.backend),
            "{d}: opened via its best backend"
        );
        let mut unique = d.backends.clone();
        unique.dedup();
        assert_eq!(unique, d.backends, "{d}: a backend listed twice");
    }
    let pci: Vec<_> = devices
        .iter()
        .filter_map(|d| d.pci_bus_id.as_deref())
        .collect();
    let mut distinct = pci.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        pci.len(),
        "one device per PCI address: {devices:?}"
    );
    if lavapipe_installed() && std::env::var_os("WGPU_BACKEND").is_none() {
        let lavapipe: Vec<_> = devices
            .iter()
            .filter(|d| d.name.contains("llvmpipe"))
            .collect();
        assert_eq!(
            lavapipe.len(),
            1,
            "lavapipe once, merged across backends: {devices:?}"
        );
        assert_eq!(lavapipe[0].device_type, DeviceType::Cpu);
        assert_eq!(lavapipe[0].backend, Backend::Vulkan);
    }
}

#[test]
fn kernels_match_their_cpu_references_exactly() {
    let Some(gpu) = gpu("kernels") else { return };
    // 100 is not a multiple of the 8 × 8 workgroup: the edges must be guarded.
    let n = 100;
    let (a, b) = (random_matrix(n, 11), random_matrix(n, 12));
    let kernel = matmul_kernel(gpu).unwrap();
    assert_eq!(
        matmul_gpu(&kernel, &a, &b, n).unwrap(),
        matmul_cpu(&a, &b, n)
    );
    // The same compiled kernel again, at another size.
    let n = 17;
    let (a, b) = (random_matrix(n, 13), random_matrix(n, 14));
    assert_eq!(
        matmul_gpu(&kernel, &a, &b, n).unwrap(),
        matmul_cpu(&a, &b, n)
    );

    let len = 300_001;
    let (x, y) = (random_f32(len, 15), random_f32(len, 16));
    let z: Vec<f32> = gpu
        .run_compute(AXPY_WGSL, "axpy", &[&x, &y], len, axpy_workgroups(len))
        .unwrap();
    assert_eq!(z, axpy_cpu(&x, &y));

    // An output longer than the shader writes is zero-filled, not garbage.
    let out: Vec<u32> = gpu
        .run_compute(ADD_ONE_WGSL, "add_one", &[&[5]], 3, 1)
        .unwrap();
    assert_eq!(out, [6, 0, 0]);
    // An empty output needs no read-back, but the dispatch still runs.
    let out: Vec<u32> = gpu
        .run_compute(ADD_ONE_WGSL, "add_one", &[&[5]], 0, 1)
        .unwrap();
    assert!(out.is_empty());
}

#[test]
fn dispatches_past_one_dimension_spill_over_y() {
    // 20M elements need 78,126 groups of 256: more than 65,535 along x.
    let w = axpy_workgroups(20_000_000);
    assert!(w.x <= 65_535 && w.y == 2, "{w:?}");
    assert!(u64::from(w.x) * u64::from(w.y) * 256 >= 20_000_000);
}

#[test]
fn shader_and_dispatch_errors_name_the_device_and_never_panic() {
    let Some(gpu) = gpu("errors") else { return };
    let name = &gpu.info().name;
    let expect_gpu_error = |result: flowyml::Result<_>, needle: &str| {
        let err: Error = result.map(|_: ()| ()).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, Error::Gpu { device: Some(ref d), .. } if d == name),
            "{text}"
        );
        assert!(text.contains(needle), "{needle:?} not in {text:?}");
    };
    expect_gpu_error(
        gpu.kernel("fn main( {", "main", 1).map(drop),
        "compiling compute shader `main`",
    );
    expect_gpu_error(
        gpu.kernel(ADD_ONE_WGSL, "no_such_entry", 1).map(drop),
        "no_such_entry",
    );
    let kernel = gpu.kernel(ADD_ONE_WGSL, "add_one", 1).unwrap();
    expect_gpu_error(
        kernel.run::<u32, u32>(&[&[1], &[2]], 1, 1).map(drop),
        "compiled for 1 inputs, given 2",
    );
    expect_gpu_error(
        kernel.run::<u32, u32>(&[&[]], 1, 1).map(drop),
        "input #0 is empty",
    );
    expect_gpu_error(
        kernel.run::<u32, u32>(&[&[1]], 1, u32::MAX).map(drop),
        "workgroups per dimension",
    );
    // The device still works after the errors.
    assert_eq!(kernel.run::<u32, u32>(&[&[41]], 1, 1).unwrap(), [42]);
}

#[test]
fn an_opened_device_is_shared_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Gpu>();
    send_sync::<GpuResourceManager>();
    let Some(gpu) = gpu("sharing") else { return };
    let kernel = Arc::new(gpu.kernel(ADD_ONE_WGSL, "add_one", 1).unwrap());
    let threads: Vec<_> = (0..4u32)
        .map(|t| {
            let kernel = Arc::clone(&kernel);
            std::thread::spawn(move || {
                let x: Vec<u32> = (0..1000).map(|i| i * 4 + t).collect();
                let y: Vec<u32> = kernel
                    .run(&[&x], x.len(), Workgroups::linear(x.len(), 64))
                    .unwrap();
                assert!(y.iter().zip(&x).all(|(y, x)| *y == x + 1));
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn memory_figures_are_consistent() {
    if !MANAGER.is_available() {
        return skip("memory", "no adapter");
    }
    for device in MANAGER.devices() {
        let usage = MANAGER.memory_usage(device).unwrap();
        assert_eq!(
            MANAGER.memory_usage(device.index).unwrap().source,
            usage.source
        );
        if let Some(total) = usage.total_mb {
            assert!(total > 0, "{device}: {usage:?}");
        }
        if let (Some(used), Some(total)) = (usage.used_mb, usage.total_mb) {
            assert!(used <= total, "{device}: {usage:?}");
        }
        let free = MANAGER.free_memory(device).unwrap();
        if let Some(free) = free {
            assert!(free <= usage.total_mb.unwrap(), "{device}: {usage:?}");
        }
        if device.device_type == DeviceType::Cpu && Path::new("/proc/meminfo").exists() {
            // A CPU adapter allocates from system RAM: both figures known.
            assert_eq!(usage.source, MemorySource::SystemMemory, "{device}");
            assert!(
                usage.used_mb.is_some() && usage.total_mb.is_some(),
                "{usage:?}"
            );
            assert!(free.is_some());
        }
    }
    for device in MANAGER
        .devices()
        .iter()
        .filter(|d| d.backend == Backend::Vulkan)
    {
        let vk = MANAGER
            .vulkan_memory_usage(device)
            .unwrap()
            .expect("a Vulkan device has heaps");
        assert!(vk.total_mb.unwrap() > 0, "{device}: {vk:?}");
        match vk.source {
            MemorySource::VulkanHeap => assert_eq!(vk.used_mb, None),
            MemorySource::VulkanBudget { budget_mb } => {
                assert!(
                    vk.used_mb.unwrap() <= budget_mb.min(vk.total_mb.unwrap()),
                    "{vk:?}"
                );
            }
            other => panic!("{device}: Vulkan figures from {other:?}"),
        }
        println!("{device}: Vulkan says {vk:?}");
    }
    let err = MANAGER.memory_usage(MANAGER.device_count()).unwrap_err();
    assert!(
        err.to_string().contains("not a device of this manager"),
        "{err}"
    );
    let stranger = GpuDevice::synthetic(0, "not enumerated here", DeviceType::DiscreteGpu);
    assert!(MANAGER.memory_usage(&stranger).is_err());
    assert!(MANAGER.open(&stranger).is_err());
}

#[test]
fn best_device_is_cached_after_the_first_call() {
    let first = MANAGER.best_device();
    let start = Instant::now();
    for _ in 0..100 {
        let again = MANAGER.best_device();
        match (&first, &again) {
            (Ok(a), Ok(b)) => assert!(std::ptr::eq(*a, *b)),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
            _ => panic!("best_device changed between calls"),
        }
    }
    assert!(
        start.elapsed() < Duration::from_millis(100),
        "{:?} for 100 calls",
        start.elapsed()
    );
}

#[test]
fn the_table_lists_every_device_and_the_choice() {
    let table = MANAGER.to_string();
    if !MANAGER.is_available() {
        assert!(table.starts_with("no GPU adapter"), "{table}");
        return skip("table", "no adapter");
    }
    for device in MANAGER.devices() {
        assert!(table.contains(&device.name), "{table}");
    }
    assert!(
        table.contains("memory source") && table.contains("best: #"),
        "{table}"
    );
}

#[test]
fn an_api_preference_beats_ranking_and_a_wrong_one_is_an_error() {
    if !MANAGER.is_available() {
        return skip("preference", "no adapter");
    }
    let last = MANAGER.device_count() - 1;
    let picked = GpuResourceManager::new().with_preference(DevicePreference::Index(last));
    assert_eq!(picked.best_device().unwrap().index, last);
    assert_eq!(picked.preference().unwrap().1, "the API");
    let name = MANAGER.devices()[last].name.to_uppercase();
    let by_name = GpuResourceManager::new().with_preference(DevicePreference::Name(name));
    assert_eq!(
        by_name.best_device().unwrap().name,
        MANAGER.devices()[last].name
    );

    let wrong =
        GpuResourceManager::new().with_preference(DevicePreference::Name("no such gpu".into()));
    let err = wrong.best_device().unwrap_err().to_string();
    assert!(
        err.contains("no such gpu") && err.contains("the API"),
        "{err}"
    );
}

#[test]
fn without_adapters_every_call_fails_cleanly() {
    // Metal does not exist on Linux or Windows: no adapter, whatever is installed.
    if cfg!(target_vendor = "apple") {
        return;
    }
    let none = GpuResourceManager::with_backends(Backends::METAL);
    assert!(!none.is_available());
    assert_eq!(none.device_count(), 0);
    assert!(none.devices().is_empty());
    assert!(none.ranked_devices().is_empty());
    let err = none.best_device().unwrap_err();
    assert!(matches!(err, Error::NoGpu { .. }), "{err}");
    assert!(err.to_string().contains("METAL"), "{err}");
    assert!(none.memory_usage(0).is_err());
    assert!(none.free_memory(0).is_err());
    assert!(none.open(0).is_err());
    assert!(none.to_string().starts_with("no GPU adapter"), "{none}");
    none.print_memory_summary();
}

fn device(index: usize, device_type: DeviceType) -> GpuDevice {
    GpuDevice::synthetic(index, &format!("device {index}"), device_type)
}

fn mem(used: Option<u64>, total: Option<u64>) -> MemoryUsage {
    MemoryUsage {
        used_mb: used,
        total_mb: total,
        source: MemorySource::Nvml,
    }
}

#[test]
fn ranking_orders_type_then_free_then_total_then_index() {
    use DeviceType::*;
    let types = [Cpu, VirtualGpu, Other, IntegratedGpu, DiscreteGpu];
    let devices: Vec<_> = types
        .iter()
        .enumerate()
        .map(|(i, &t)| device(i, t))
        .collect();
    assert_eq!(rank_devices(&devices, &[]), [4, 3, 2, 1, 0]);

    let devices: Vec<_> = (0..5).map(|i| device(i, DiscreteGpu)).collect();
    let memory = [
        mem(None, Some(80_000)),        // free unknown: below any known free figure
        mem(Some(1_000), Some(8_000)),  // 7,000 free
        mem(Some(0), Some(24_000)),     // 24,000 free
        mem(Some(9_000), Some(16_000)), // 7,000 free, more total than #1
        mem(None, None),
    ];
    assert_eq!(rank_devices(&devices, &memory), [2, 3, 1, 0, 4]);

    // Ties keep enumeration order.
    let same = [mem(Some(1), Some(2)); 3];
    assert_eq!(rank_devices(&devices[..3], &same), [0, 1, 2]);

    // The type outranks memory: an idle CPU adapter loses to a busy GPU.
    let mixed = [device(0, Cpu), device(1, IntegratedGpu)];
    let memory = [mem(Some(0), Some(1 << 20)), mem(Some(900), Some(1_000))];
    assert_eq!(choose_device(&mixed, &memory, None).unwrap().index, 1);

    // A Vulkan budget caps free memory below total - used.
    let budget = MemoryUsage {
        used_mb: Some(0),
        total_mb: Some(16_000),
        source: MemorySource::VulkanBudget { budget_mb: 2_000 },
    };
    let pair = [device(0, DiscreteGpu), device(1, DiscreteGpu)];
    assert_eq!(
        rank_devices(&pair, &[budget, mem(Some(0), Some(4_000))]),
        [1, 0]
    );
}

#[test]
fn preferences_pick_by_index_or_name_and_fail_loudly() {
    let devices = [
        GpuDevice::synthetic(0, "NVIDIA GeForce RTX 4090", DeviceType::DiscreteGpu),
        GpuDevice::synthetic(1, "AMD Radeon RX 7900 XTX", DeviceType::DiscreteGpu),
        GpuDevice::synthetic(2, "llvmpipe (LLVM 15.0.6, 256 bits)", DeviceType::Cpu),
    ];
    let pick = |pref: &str| {
        let pref: DevicePreference = pref.parse().unwrap();
        choose_device(&devices, &[], Some(&pref)).map(|d| d.index)
    };
    assert_eq!(pick("2").unwrap(), 2);
    assert_eq!(pick("radeon").unwrap(), 1);
    assert_eq!(pick("LLVMPIPE").unwrap(), 2);
    // A name several devices match picks the best-ranked of them.
    let memory = [
        mem(Some(20_000), Some(24_000)),
        mem(Some(0), Some(24_000)),
        mem(None, None),
    ];
    let gpu: DevicePreference = "x".parse().unwrap();
    assert_eq!(
        choose_device(&devices, &memory, Some(&gpu)).unwrap().index,
        1
    );
    let err = pick("9").unwrap_err().to_string();
    assert!(
        err.contains("device #9") && err.contains("llvmpipe"),
        "{err}"
    );
    assert!("  ".parse::<DevicePreference>().is_err());
    let err = choose_device(&[], &[], None).unwrap_err();
    assert!(matches!(err, Error::NoGpu { .. }), "{err}");
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn meminfo_reader_on_fake_trees() {
    let root = tempfile::tempdir().unwrap();
    let meminfo = root.path().join("proc/meminfo");
    write(
        &meminfo,
        "MemTotal:       32768000 kB\nMemFree:         1000000 kB\nMemAvailable:   24576000 kB\nBuffers: 1 kB\n",
    );
    let usage = read_meminfo(root.path()).unwrap();
    assert_eq!(usage.source, MemorySource::SystemMemory);
    assert_eq!(usage.total_mb, Some(32_000));
    assert_eq!(usage.used_mb, Some(8_000));
    assert_eq!(usage.free_mb(), Some(24_000));

    // Old kernels have no MemAvailable: used is unknown, not MemTotal - MemFree.
    write(&meminfo, "MemTotal: 1048576 kB\nMemFree: 1024 kB\n");
    let usage = read_meminfo(root.path()).unwrap();
    assert_eq!((usage.used_mb, usage.total_mb), (None, Some(1024)));

    write(&meminfo, "garbage\n");
    let err = read_meminfo(root.path()).unwrap_err().to_string();
    assert!(err.contains("MemTotal"), "{err}");
    let err = read_meminfo(&root.path().join("nowhere")).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");

    // The real file, where there is one, satisfies the same invariants.
    if let Ok(real) = read_meminfo(Path::new("/")) {
        assert!(real.total_mb.unwrap() > 0);
        assert!(real.used_mb.unwrap() <= real.total_mb.unwrap());
    }
}

#[test]
fn amd_sysfs_reader_on_fake_trees() {
    let root = tempfile::tempdir().unwrap();
    let devices = root.path().join("sys/bus/pci/devices");
    let card = |bus: &str, device_id: &str, used: &str, total: &str| {
        let dir = devices.join(bus);
        write(&dir.join("vendor"), "0x1002\n");
        write(&dir.join("device"), &format!("{device_id}\n"));
        write(&dir.join("mem_info_vram_used"), used);
        write(&dir.join("mem_info_vram_total"), total);
    };
    card("0000:03:00.0", "0x73bf", "2147483648\n", "17163091968\n");
    card("0000:0a:00.0", "0x744c", "0\n", "25753026560\n");
    let mut rx6800 = GpuDevice::synthetic(0, "AMD Radeon RX 6800", DeviceType::DiscreteGpu);
    (rx6800.vendor, rx6800.device_id) = (0x1002, 0x73bf);

    // By PCI id, in NVML's 8-digit form too.
    rx6800.pci_bus_id = Some("00000000:03:00.0".into());
    let usage = read_amd_sysfs(root.path(), &rx6800).unwrap();
    assert_eq!((usage.used_mb, usage.total_mb), (Some(2048), Some(16_368)));
    assert_eq!(usage.source, MemorySource::AmdSysfs);

    // Without a PCI id: the one card with this vendor and device id.
    rx6800.pci_bus_id = None;
    assert_eq!(read_amd_sysfs(root.path(), &rx6800).unwrap(), usage);

    // Two identical cards and no PCI id: which one is unknowable.
    card("0000:04:00.0", "0x73bf", "0\n", "17163091968\n");
    let err = read_amd_sysfs(root.path(), &rx6800)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("AMD Radeon RX 6800") && err.contains("2 cards"),
        "{err}"
    );

    // A card whose files are missing or garbled.
    rx6800.pci_bus_id = Some("0000:05:00.0".into());
    assert!(matches!(
        read_amd_sysfs(root.path(), &rx6800),
        Err(Error::Io { .. })
    ));
    card("0000:05:00.0", "0x73bf", "lots\n", "17163091968\n");
    let err = read_amd_sysfs(root.path(), &rx6800)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a byte count"), "{err}");
}

#[test]
fn nvml_fails_cleanly_without_a_driver() {
    let err = NvmlReader::from_library(Path::new("/nonexistent/libnvidia-ml.so.1")).unwrap_err();
    assert!(matches!(err, Error::Gpu { device: None, .. }), "{err}");
    assert!(err.to_string().contains("NVML"), "{err}");
    match NvmlReader::new() {
        Err(e) => assert!(e.to_string().contains("NVML"), "{e}"),
        Ok(nvml) => {
            // A machine with NVIDIA's driver: its GPUs have device-wide figures.
            for d in MANAGER
                .devices()
                .iter()
                .filter(|d| d.vendor == 0x10de && d.pci_bus_id.is_some())
            {
                let usage = nvml.memory(d).unwrap();
                assert!(usage.used_mb.unwrap() <= usage.total_mb.unwrap());
            }
        }
    }
    // Without a PCI id NVML cannot tell which GPU is meant.
    if let Ok(nvml) = NvmlReader::new() {
        let card = GpuDevice::synthetic(0, "mystery", DeviceType::DiscreteGpu);
        assert!(nvml.memory(&card).unwrap_err().to_string().contains("PCI"));
    }
}

// ---- GPU steps in pipelines ----

mod steps {
    use flowyml::gpu::{Gpu, Workgroups};
    use flowyml::{Error, Pipeline, StepStatus, step};
    use flowyml_workspace::gpu_kernels::ADD_ONE_WGSL;

    #[step(outputs = ["x"])]
    pub fn numbers() -> Vec<u32> {
        (0..100_000).collect()
    }

    #[step(outputs = ["y"], gpu, fallback = add_one_cpu)]
    pub fn add_one(x: &Vec<u32>, gpu: &Gpu) -> flowyml::Result<Vec<u32>> {
        gpu.run_compute(
            ADD_ONE_WGSL,
            "add_one",
            &[x.as_slice()],
            x.len(),
            Workgroups::linear(x.len(), 64),
        )
    }

    pub fn add_one_cpu(x: &[u32]) -> flowyml::Result<Vec<u32>> {
        Ok(x.iter().map(|v| v + 1).collect())
    }

    #[step(outputs = ["z"], gpu)]
    pub fn add_one_gpu_only(y: &Vec<u32>, gpu: &Gpu) -> flowyml::Result<Vec<u32>> {
        gpu.run_compute(
            ADD_ONE_WGSL,
            "add_one",
            &[y.as_slice()],
            y.len(),
            Workgroups::linear(y.len(), 64),
        )
    }

    #[step(outputs = ["cpu_side"])]
    pub fn cpu_side(x: &Vec<u32>) -> u64 {
        x.iter().map(|&v| u64::from(v)).sum()
    }

    #[test]
    fn a_gpu_step_matches_the_cpu_and_records_its_device() -> flowyml::Result<()> {
        if super::gpu("a_gpu_step_matches_the_cpu_and_records_its_device").is_none() {
            return Ok(());
        }
        let mut p = Pipeline::new("gpu_steps");
        p.add_step(numbers)
            .add_step(add_one)
            .add_step(add_one_gpu_only)
            .add_step(cpu_side);
        let result = p.run()?;
        let expected: Vec<u32> = (2..100_002).collect();
        assert_eq!(result.get::<Vec<u32>>("z")?, &expected);
        let notes = &result.step("add_one").expect("ran").notes;
        assert!(notes.iter().any(|n| n.starts_with("GPU: ")), "{notes:?}");
        assert!(
            notes.iter().any(|n| n.starts_with("GPU memory used: ")),
            "{notes:?}"
        );
        assert!(result.step("cpu_side").expect("ran").notes.is_empty());
        Ok(())
    }

    #[test]
    fn without_a_gpu_the_fallback_runs_and_a_gpu_only_step_fails_by_name() {
        let mut p = Pipeline::new("no_gpu");
        p.add_step(numbers)
            .add_step(add_one)
            .add_step(add_one_gpu_only)
            .no_gpu(true);
        let err = p.run().unwrap_err();
        let Error::StepFailed {
            step,
            message,
            result,
            ..
        } = err
        else {
            panic!("expected a failed step")
        };
        assert_eq!(step, "add_one_gpu_only");
        assert!(
            message.contains(
                "step `add_one_gpu_only` needs a `Gpu`: the GPU is turned off for this run (--no-gpu)"
            ),
            "{message}"
        );
        let fallback = result.step("add_one").expect("ran");
        assert_eq!(fallback.status, StepStatus::Ran);
        assert!(
            fallback
                .notes
                .iter()
                .any(|n| n.contains("ran the CPU fallback `add_one_cpu`")),
            "{:?}",
            fallback.notes
        );
        assert_eq!(
            result.get::<Vec<u32>>("y").expect("fallback output")[99_999],
            100_000
        );
    }
}

#[test]
fn the_cli_prints_the_device_table_and_the_choice() {
    let mut out = Vec::new();
    flowyml::cli::run(["flowyml", "gpu"], &mut out)
        .expect("the gpu command works with or without an adapter");
    let out = String::from_utf8(out).expect("utf-8");
    assert!(out.contains("best device: "), "{out}");
    if MANAGER.is_available() {
        assert!(!out.contains("best device: none"), "{out}");
    }
}
