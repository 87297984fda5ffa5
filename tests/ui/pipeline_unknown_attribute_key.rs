use flowyml::pipeline;

#[pipeline(name = "etl", workers = 4)]
mod etl {
    #[step(outputs = ["data"])]
    fn load() -> Vec<f64> {
        vec![1.0]
    }
}

fn main() {}
