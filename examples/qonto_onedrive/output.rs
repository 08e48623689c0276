//! `--json`: every command prints exactly one JSON document on stdout, success or not.
//!
//! Every document has the same envelope: `version` (of these shapes; raised only when a
//! field changes meaning or goes away), `command`, `exit_code`, and either the command's
//! own fields or, when it failed, `error` (`kind`, `message`). The shapes are documented
//! in docs/command-line.md and pinned by the command's tests.

use receipt_sync::Error;
use serde_json::{Map, Value, json};

/// The version of the documents' shapes.
pub const JSON_VERSION: u32 = 1;

/// A command's document: the envelope around its own fields (an object).
pub fn document(command: &str, exit_code: u8, fields: Value) -> Value {
    let mut out = Map::new();
    out.insert("version".into(), json!(JSON_VERSION));
    out.insert("command".into(), json!(command));
    out.insert("exit_code".into(), json!(exit_code));
    if let Value::Object(fields) = fields {
        for (key, value) in fields {
            out.entry(key).or_insert(value);
        }
    }
    Value::Object(out)
}

/// The document of a command that failed: the envelope and the error.
pub fn failure(command: &str, exit_code: u8, error: &Error, message: &str) -> Value {
    document(
        command,
        exit_code,
        json!({ "error": { "kind": format!("{:?}", error.kind()), "message": message } }),
    )
}

/// Prints one document on stdout.
pub fn print(document: &Value) {
    println!("{document}");
}
