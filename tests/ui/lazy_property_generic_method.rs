use flowyml::{LazyCells, lazy_properties};

struct Model {
    lazy: LazyCells<Self>,
}

#[lazy_properties]
impl Model {
    #[lazy_property]
    fn weights<T: Default + Clone>(&self) -> Vec<T> {
        vec![T::default(); 4]
    }
}

fn main() {}
