use flowyml::pipeline;

#[pipeline(name = "training")]
mod training {
    type Fallible<T> = Result<T, String>;

    #[step(outputs = ["features"])]
    fn featurize() -> Fallible<Vec<f64>> {
        Ok(vec![1.0, 2.0])
    }

    #[step(outputs = ["model"])]
    fn train(features: &Vec<f32>) -> f32 {
        features.iter().sum()
    }
}

fn main() {}
