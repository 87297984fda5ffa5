use flowyml::pipeline;

#[pipeline(name = "training")]
mod training {
    #[step(outputs = ["features"])]
    fn featurize() -> Vec<f64> {
        vec![1.0, 2.0]
    }

    #[step(outputs = ["model"])]
    fn train(feature: &Vec<f64>) -> f64 {
        feature.iter().sum()
    }
}

fn main() {}
