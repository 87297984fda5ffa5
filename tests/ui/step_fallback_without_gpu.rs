use flowyml::step;

fn double_on_cpu(x: &Vec<u32>) -> Vec<u32> {
    x.iter().map(|v| 2 * v).collect()
}

#[step(outputs = ["doubled"], fallback = double_on_cpu)]
fn double(x: &Vec<u32>) -> Vec<u32> {
    double_on_cpu(x)
}

fn main() {}
