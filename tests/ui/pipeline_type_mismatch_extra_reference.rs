use flowyml::pipeline;

#[pipeline(name = "training")]
mod training {
    #[step(outputs = ["features"])]
    fn featurize() -> Vec<f64> {
        vec![1.0, 2.0]
    }

    #[step(outputs = ["model"])]
    fn train(features: &&Vec<f64>) -> f64 {
        features.iter().sum()
    }
}

fn main() {}
