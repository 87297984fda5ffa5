use flowyml::step;

#[step(inputs = ["features", "labels", "weights"], outputs = ["model"])]
fn train(features: &Vec<f64>, labels: &Vec<u8>) -> f64 {
    features.len() as f64 + labels.len() as f64
}

fn main() {}
