use flowyml::step;

#[step(outputs = ["first"])]
fn first(values: &Vec<u32>) -> &u32 {
    &values[0]
}

fn main() {}
