//! {{name}}: a wasm-host function. `run` gets its input as JSON text and returns JSON text; an `Err` is the
//! function's error (`wasm-host run` prints it and exits 1).

wit_bindgen::generate!({ world: "function", path: "wit", generate_all });

struct Function;

impl Guest for Function {
    fn run(input: String) -> Result<String, String> {
        // To call an API on someone's behalf, grant a connection in {{name}}.toml (`[grants] connections`)
        // and ask the host for its token:
        //     use wasm_host::authconnection::authconnection::get_connection_token;
        //     let token = get_connection_token("google").map_err(|e| format!("{e:?}"))?;
        // then send `Authorization: {token_type} {access_token}`, for example with the `wstd` crate's HTTP
        // client; or let the host attach it (`[grants] bind`) and send no token at all.
        Ok(format!("{{\"hello\":{input}}}"))
    }
}

export!(Function);
