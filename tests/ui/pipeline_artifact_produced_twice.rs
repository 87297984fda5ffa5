use flowyml::pipeline;

#[pipeline(name = "etl")]
mod etl {
    #[step(outputs = ["data"])]
    fn load_csv() -> Vec<f64> {
        vec![1.0]
    }

    #[step(outputs = ["data"])]
    fn load_parquet() -> Vec<f64> {
        vec![2.0]
    }
}

fn main() {}
