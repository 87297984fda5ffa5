use flowyml::step;

#[step(outputs = ["mean", "std", "count"])]
fn describe(values: &Vec<f64>) -> (f64, f64) {
    (values.iter().sum(), 0.0)
}

fn main() {}
