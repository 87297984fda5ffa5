//! Two `#[pipeline]` modules with one name compile (they may live in
//! different crates, linked together), but the registry refuses the name,
//! naming both modules, where it once returned the first it found.

use flowyml::pipeline;

#[pipeline(name = "same")]
mod nightly {
    #[step(outputs = ["n"])]
    fn count() -> u32 {
        1
    }
}

#[pipeline(name = "same")]
mod hourly {
    #[step(outputs = ["n"])]
    fn count() -> u32 {
        2
    }
}

fn main() {
    let err = flowyml::registry::pipeline("same").expect_err("the name is shared");
    let message = err.to_string();
    assert!(
        message.starts_with("pipeline name `same` is registered 2 times, by `"),
        "{message}"
    );
    assert!(message.contains("::hourly`") && message.contains("::nightly`"), "{message}");
    assert!(matches!(err, flowyml::Error::DuplicatePipeline { .. }));
    assert!(flowyml::registry::check().is_err());
    assert_eq!(*nightly::pipeline().run().unwrap().get::<u32>("n").unwrap(), 1);
}
