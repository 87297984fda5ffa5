use flowyml::pipeline;

#[pipeline(name = "loop")]
mod looping {
    #[step(outputs = ["a"])]
    fn make_a(b: &u32) -> u32 {
        b + 1
    }

    #[step(outputs = ["b"])]
    fn make_b(a: &u32) -> u32 {
        a * 2
    }
}

fn main() {}
