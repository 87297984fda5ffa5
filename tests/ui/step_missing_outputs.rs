use flowyml::step;

#[step]
fn clean(raw: &Vec<f64>) -> Vec<f64> {
    raw.clone()
}

fn main() {}
