use std::cell::RefCell;

use flowyml::step;

type Counter = RefCell<u64>;

#[step(outputs = ["counter"])]
fn count(values: &Vec<u32>) -> Counter {
    RefCell::new(values.len() as u64)
}

fn main() {}
