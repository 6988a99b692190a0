//! The smallest function: `run` returns its input. What an invocation costs when the function does nothing
//! (the benchmarks' invocation overhead).

wit_bindgen::generate!({ world: "function", path: "../../../wit", generate_all });

struct Trivial;

impl Guest for Trivial {
    fn run(input: String) -> Result<String, String> {
        Ok(input)
    }
}

export!(Trivial);
