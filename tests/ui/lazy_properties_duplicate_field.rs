use flowyml::{LazyCells, lazy_properties};

struct Model {
    cells: LazyCells<Self>,
}

#[lazy_properties(field = cells, field = cells)]
impl Model {
    #[lazy_property]
    fn size(&self) -> usize {
        1
    }
}

fn main() {}
