use flowyml::step;

#[step(outputs = ["clean"], gpu = true)]
fn clean(raw: &Vec<f64>) -> Vec<f64> {
    raw.clone()
}

fn main() {}
