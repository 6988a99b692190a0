//! A component of another world: it imports `test:foreign/thing`, which wasm-host does not provide.

wit_bindgen::generate!({ world: "foreign", path: "wit", generate_all });

struct Foreign;

impl Guest for Foreign {
    fn run(_input: String) -> Result<String, String> {
        Ok(test::foreign::thing::frob().to_string())
    }
}

export!(Foreign);
