use flowyml::step;

#[step(outputs = ["sorted"])]
fn sort(values: &mut Vec<f64>) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    values.clone()
}

fn main() {}
