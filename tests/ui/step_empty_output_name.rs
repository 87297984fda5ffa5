use flowyml::step;

#[step(outputs = [""])]
fn total(values: &Vec<u32>) -> u32 {
    values.iter().sum()
}

fn main() {}
