use flowyml::{LazyCells, lazy_properties};

struct Model {
    lazy: LazyCells<Self>,
}

#[lazy_properties]
impl Model {
    #[lazy_property]
    fn weights(&mut self) -> Vec<f32> {
        vec![0.0; 4]
    }
}

fn main() {}
