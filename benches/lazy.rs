//! Lazy values and properties after initialisation vs `OnceLock`.

use std::hint::black_box;
use std::sync::OnceLock;

use criterion::{Criterion, criterion_group, criterion_main};
use flowyml::{LazyCells, LazyValue, lazy_properties};

struct WithProperty {
    seed: u64,
    lazy: LazyCells<Self>,
}

#[lazy_properties]
impl WithProperty {
    #[lazy_property]
    fn table(&self) -> Vec<u64> {
        (0..64).map(|i| i * self.seed).collect()
    }
}

struct HandWritten {
    seed: u64,
    table: OnceLock<Vec<u64>>,
}

impl HandWritten {
    fn table(&self) -> &Vec<u64> {
        self.table
            .get_or_init(|| (0..64).map(|i| i * self.seed).collect())
    }
}

fn lazy(c: &mut Criterion) {
    let mut group = c.benchmark_group("lazy_access");
    let value = LazyValue::new(|| vec![1u64; 64]);
    value.value();
    let once = OnceLock::new();
    once.get_or_init(|| vec![1u64; 64]);
    group.bench_function("LazyValue::value", |b| {
        b.iter(|| black_box(black_box(&value).value().len()))
    });
    group.bench_function("OnceLock::get", |b| {
        b.iter(|| black_box(black_box(&once).get().expect("initialised").len()))
    });

    let property = WithProperty {
        seed: 3,
        lazy: LazyCells::new(),
    };
    property.table();
    let hand = HandWritten {
        seed: 3,
        table: OnceLock::new(),
    };
    hand.table();
    group.bench_function("lazy_property", |b| {
        b.iter(|| black_box(black_box(&property).table().len()))
    });
    group.bench_function("hand_written_OnceLock_field", |b| {
        b.iter(|| black_box(black_box(&hand).table().len()))
    });
    group.finish();
}

criterion_group!(benches, lazy);
criterion_main!(benches);
