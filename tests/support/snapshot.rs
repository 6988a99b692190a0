//! Expected-output files checked by tests: `tests/snapshots/<group>/<name>`. A test compares what it got with
//! the file; `WASM_HOST_UPDATE_SNAPSHOTS=1 cargo test -p wasm-host --test cli` writes what it got instead, to be
//! reviewed with `git diff tests/snapshots` and committed. A snapshot that is missing fails with that advice.

use std::path::PathBuf;

/// The snapshot file `tests/snapshots/<group>/<name>`.
pub fn path(group: &str, name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("snapshots").join(group).join(name)
}

fn updating() -> bool {
    std::env::var_os("WASM_HOST_UPDATE_SNAPSHOTS").is_some_and(|v| v == "1")
}

/// Compares `actual` with the snapshot, or writes it when updating. Returns the difference as a message, so a
/// test can check every snapshot before failing.
pub fn check(group: &str, name: &str, actual: &str) -> Result<(), String> {
    let file = path(group, name);
    if updating() {
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, actual).unwrap();
        return Ok(());
    }
    let expected = std::fs::read_to_string(&file).map_err(|e| {
        format!(
            "no snapshot {} ({e}); write it with WASM_HOST_UPDATE_SNAPSHOTS=1 and review it with git diff",
            file.display()
        )
    })?;
    if expected == actual {
        return Ok(());
    }
    let first = expected.lines().zip(actual.lines()).position(|(e, a)| e != a).unwrap_or(expected.lines().count().min(actual.lines().count()));
    Err(format!(
        "{} differs from the snapshot at line {}:\n  expected: {:?}\n  actual:   {:?}\n(WASM_HOST_UPDATE_SNAPSHOTS=1 rewrites \
         it; review with git diff)",
        file.display(),
        first + 1,
        expected.lines().nth(first).unwrap_or("<end>"),
        actual.lines().nth(first).unwrap_or("<end>"),
    ))
}

/// The names of the snapshots in a group, so a test can tell a snapshot that no longer matches anything.
pub fn names(group: &str) -> Vec<String> {
    let dir = path(group, "");
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut names: Vec<String> = entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// The shape of a JSON value: every value replaced by its type, arrays by the shape of their first element, so
/// a snapshot holds the field names and types and not what changes from run to run.
pub fn json_shape(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Null => Value::String("null".into()),
        Value::Bool(_) => Value::String("bool".into()),
        Value::Number(_) => Value::String("number".into()),
        Value::String(_) => Value::String("string".into()),
        Value::Array(items) => Value::Array(items.first().map(json_shape).into_iter().collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), json_shape(v))).collect()),
    }
}
