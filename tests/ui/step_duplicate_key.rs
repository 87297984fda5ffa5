use flowyml::step;

#[step(outputs = ["clean"], outputs = ["cleaned"])]
fn clean(raw: &Vec<f64>) -> Vec<f64> {
    raw.clone()
}

fn main() {}
