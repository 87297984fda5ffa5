use flowyml::pipeline;

#[pipeline(name = "etl")]
mod etl {
    #[step(outputs = ["clean"])]
    fn clean() -> Vec<f64> {
        vec![1.0]
    }

    #[step(outputs = ["total"])]
    fn total(clean: &Vec<f64>) -> f64 {
        clean.iter().sum()
    }
}

fn main() {}
