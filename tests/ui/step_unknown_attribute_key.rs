use flowyml::step;

#[step(outputs = ["clean"], workers = 3)]
fn clean(raw: &Vec<f64>) -> Vec<f64> {
    raw.clone()
}

fn main() {}
