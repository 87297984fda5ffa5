use flowyml::step;

#[step(outputs = ["total"])]
fn total(values: &[u32]) -> u32 {
    values.iter().sum()
}

#[step(outputs = ["greeting"])]
fn greet(name: &str) -> String {
    format!("hello {name}")
}

fn main() {}
