use flowyml::step;

#[step(outputs = ["mean", "count"])]
fn describe(values: &Vec<f64>) -> f64 {
    values.iter().sum()
}

fn main() {}
