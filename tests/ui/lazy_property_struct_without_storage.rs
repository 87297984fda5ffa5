use flowyml::lazy_properties;

struct Model {
    path: String,
}

#[lazy_properties]
impl Model {
    #[lazy_property]
    fn weights(&self) -> Vec<u8> {
        self.path.bytes().collect()
    }
}

fn main() {
    let model = Model { path: "m.bin".into() };
    let _ = model.weights();
}
