use flowyml::pipeline;

#[pipeline(name = "etl")]
mod etl {
    #[step(outputs = ["train_data"], name = "load")]
    fn load_train() -> Vec<f64> {
        vec![1.0]
    }

    #[step(outputs = ["test_data"], name = "load")]
    fn load_test() -> Vec<f64> {
        vec![2.0]
    }
}

fn main() {}
