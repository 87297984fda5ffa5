//! A tuple alias for several outputs, and a `Result` under another name:
//! the macro reads both by type.

use flowyml::pipeline;

#[pipeline(name = "stats")]
mod stats {
    pub type Stats = (f64, usize);
    pub type Fallible<T> = Result<T, String>;

    #[step(outputs = ["values"])]
    fn load() -> Fallible<Vec<f64>> {
        Ok(vec![1.0, 2.0, 3.0])
    }

    #[step(outputs = ["mean", "n"])]
    fn describe(values: &Vec<f64>) -> Stats {
        (values.iter().sum::<f64>() / values.len() as f64, values.len())
    }

    #[step(outputs = ["report"])]
    fn report(mean: &f64, n: &usize) -> String {
        format!("{n} values, mean {mean}")
    }
}

fn main() {
    let result = stats::pipeline().run().expect("the pipeline runs");
    assert_eq!(*result.get::<f64>("mean").unwrap(), 2.0);
    assert_eq!(*result.get::<usize>("n").unwrap(), 3);
    assert_eq!(result.get::<String>("report").unwrap().as_str(), "3 values, mean 2");
}
