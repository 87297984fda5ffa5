use flowyml::{LazyCells, lazy_properties};

struct Model {
    path: String,
    cells: LazyCells<Self>,
}

#[lazy_properties]
impl Model {
    #[lazy_property]
    fn weights(&self) -> Vec<u8> {
        self.path.bytes().collect()
    }
}

fn main() {
    let model = Model { path: "m.bin".into(), cells: LazyCells::new() };
    let _ = model.weights();
}
