//! An explicit lifetime where elision would do, and a step returning
//! nothing through an alias of `Result<(), _>`.

use flowyml::{Pipeline, step};

type Checked = Result<(), String>;

#[step(outputs = ["total"])]
fn total<'a>(values: &'a Vec<u32>) -> u32 {
    values.iter().sum()
}

#[step]
fn check(total: &u32) -> Checked {
    if *total == 6 { Ok(()) } else { Err(format!("total {total}")) }
}

fn main() {
    let mut pipeline = Pipeline::new("lifetimes");
    pipeline
        .input("values", vec![1_u32, 2, 3])
        .add_step(total)
        .add_step(check);
    let result = pipeline.run().expect("the pipeline runs");
    assert_eq!(*result.get::<u32>("total").unwrap(), 6);
    assert!(result.step("check").is_some());

    let mut failing = Pipeline::new("lifetimes");
    failing
        .input("values", vec![1_u32])
        .add_step(total)
        .add_step(check);
    let err = failing.run().expect_err("`check` returns an `Err`");
    assert!(err.to_string().contains("total 1"), "{err}");
}
