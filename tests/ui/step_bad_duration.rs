use flowyml::step;

#[step(outputs = ["clean"], timeout = "30 sec", retries = -1)]
fn clean(raw: &Vec<f64>) -> Vec<f64> {
    raw.clone()
}

fn main() {}
