use flowyml::{LazyCells, lazy_properties};

struct Model {
    lazy: LazyCells<Self>,
}

#[lazy_properties]
impl Model {
    #[lazy_property]
    fn warm_up(&self) {
        println!("warming up");
    }
}

fn main() {}
