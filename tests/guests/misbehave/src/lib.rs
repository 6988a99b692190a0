//! A function that misbehaves on request: `"panic"` traps, `"exit"` exits instead of returning, `"err"` returns
//! an error, anything else is echoed back.

wit_bindgen::generate!({ world: "function", path: "../../../wit", generate_all });

struct Misbehave;

impl Guest for Misbehave {
    fn run(input: String) -> Result<String, String> {
        match serde_json::from_str::<serde_json::Value>(&input).ok().as_ref().and_then(|v| v.as_str()) {
            Some("panic") => panic!("asked to panic"),
            // WASI 0.2 `exit` carries only success or failure: any non-zero status arrives as 1.
            Some("exit") => std::process::exit(3),
            Some("err") => Err("asked to fail".into()),
            Some("log") => {
                println!("to stdout");
                eprintln!("to stderr");
                Ok("\"logged\"".into())
            }
            _ => Ok(input),
        }
    }
}

export!(Misbehave);
