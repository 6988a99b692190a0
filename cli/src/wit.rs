//! The WIT this binary implements, embedded: `build-js` builds against it and `new` writes it into projects, so
//! a function is always built against exactly what the host provides. `wit/deps/` is WASI 0.2.12 as
//! wasmtime-wasi-http 48 ships it.

/// `(path under wit/, text)`, every file of the repository's `wit/` directory.
pub const FILES: &[(&str, &str)] = &[
    ("authconnection.wit", include_str!("../../wit/authconnection.wit")),
    ("deps/cli.wit", include_str!("../../wit/deps/cli.wit")),
    ("deps/clocks.wit", include_str!("../../wit/deps/clocks.wit")),
    ("deps/filesystem.wit", include_str!("../../wit/deps/filesystem.wit")),
    ("deps/http.wit", include_str!("../../wit/deps/http.wit")),
    ("deps/io.wit", include_str!("../../wit/deps/io.wit")),
    ("deps/random.wit", include_str!("../../wit/deps/random.wit")),
    ("deps/sockets.wit", include_str!("../../wit/deps/sockets.wit")),
];

/// Writes every file under `dir` (`dir/authconnection.wit`, `dir/deps/...`).
pub fn write_to(dir: &std::path::Path) -> std::io::Result<()> {
    for (name, text) in FILES {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().expect("a file under dir"))?;
        std::fs::write(path, text)?;
    }
    Ok(())
}
