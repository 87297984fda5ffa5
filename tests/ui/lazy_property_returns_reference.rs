use flowyml::{LazyCells, lazy_properties};

struct Model {
    path: String,
    lazy: LazyCells<Self>,
}

#[lazy_properties]
impl Model {
    #[lazy_property]
    fn stem(&self) -> &str {
        self.path.trim_end_matches(".bin")
    }
}

fn main() {
    let model = Model { path: "m.bin".into(), lazy: LazyCells::new() };
    let _ = model.stem();
}
