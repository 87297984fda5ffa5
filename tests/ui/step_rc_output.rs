use std::rc::Rc;

use flowyml::step;

#[step(outputs = ["shared"])]
fn share(values: &Vec<u32>) -> Rc<Vec<u32>> {
    Rc::new(values.clone())
}

fn main() {}
