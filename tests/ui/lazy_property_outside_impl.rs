use flowyml::lazy_property;

#[lazy_property]
fn weights() -> Vec<f32> {
    vec![0.0; 4]
}

fn main() {
    let _ = weights();
}
