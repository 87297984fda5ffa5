use flowyml::pipeline;

#[pipeline(name = "etl", name = "etl2")]
mod etl {
    #[step(outputs = ["clean"])]
    fn clean() -> Vec<f64> {
        vec![1.0]
    }
}

fn main() {}
