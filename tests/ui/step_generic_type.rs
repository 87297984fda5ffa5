use flowyml::step;

#[step(outputs = ["total"])]
fn total<T: Copy + Into<u64>>(values: &Vec<T>) -> u64 {
    values.iter().map(|&v| v.into()).sum()
}

#[step(outputs = ["kept"])]
fn keep<'a>(values: &'a Vec<&'a str>) -> usize {
    values.len()
}

fn main() {}
