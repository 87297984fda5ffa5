use flowyml::step;

#[step(output = ["clean"])]
fn clean(raw: &Vec<f64>) -> Vec<f64> {
    raw.clone()
}

fn main() {}
