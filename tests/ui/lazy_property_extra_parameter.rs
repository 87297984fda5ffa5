use flowyml::{LazyCells, lazy_properties};

struct Model {
    lazy: LazyCells<Self>,
}

#[lazy_properties]
impl Model {
    #[lazy_property]
    fn weights(&self, size: usize) -> Vec<f32> {
        vec![0.0; size]
    }
}

fn main() {}
