//! Kanister output artifacts: `###Phase-output###: {"key":"K","value":"V"}` on stdout,
//! encoded byte for byte as Go's `encoding/json` would.

use anyhow::{bail, Result};

/// The marker Kanister looks for in a pod's log lines.
pub const PHASE_OUTPUT_MARKER: &str = "###Phase-output###";

/// Quotes `s` as Go's `json.Marshal` does: `"` `\` and control characters escaped, `<` `>`
/// `&` and U+2028/U+2029 as `\u` escapes (HTML-safe), everything else verbatim.
pub fn go_json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Checks an output key as upstream does: non-empty, `[a-zA-Z0-9_]` only.
pub fn validate_key(key: &str) -> Result<()> {
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        bail!("output key {key:?} is invalid: use only letters, digits and '_' (at least one)");
    }
    Ok(())
}

/// The full line (without newline) for one output artifact.
pub fn phase_output_line(key: &str, value: &str) -> Result<String> {
    validate_key(key)?;
    Ok(format!(
        "{PHASE_OUTPUT_MARKER}: {{\"key\":{},\"value\":{}}}",
        go_json_string(key),
        go_json_string(value)
    ))
}

/// The value `location push` emits: the snapshot JSON blueprints hand back to pull/delete.
pub fn snapshot_json(id: &str, logical_size: u64, physical_size: u64) -> String {
    format!(
        "{{\"id\":{},\"logicalSize\":{logical_size},\"physicalSize\":{physical_size}}}",
        go_json_string(id)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_go_encoding() {
        // Expected strings are what Go's json.Marshal prints for the same input.
        assert_eq!(go_json_string("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(go_json_string("<a&b>"), r#""\u003ca\u0026b\u003e""#);
        assert_eq!(
            go_json_string("\n\t\r\u{1}\u{8}\u{c}"),
            r#""\n\t\r\u0001\u0008\u000c""#
        );
        assert_eq!(go_json_string("é\u{2028}"), "\"é\\u2028\"");
    }

    #[test]
    fn output_line_shape() {
        assert_eq!(
            phase_output_line("backupLocation", "s3://x/y").unwrap(),
            r#"###Phase-output###: {"key":"backupLocation","value":"s3://x/y"}"#
        );
        assert!(phase_output_line("bad-key", "v").is_err());
        assert!(phase_output_line("", "v").is_err());
    }

    #[test]
    fn snapshot_json_decodes_as_json() {
        let v: serde_json::Value = serde_json::from_str(&snapshot_json("ab", 10, 3)).unwrap();
        assert_eq!(v["id"], "ab");
        assert_eq!(v["logicalSize"], 10);
        assert_eq!(v["physicalSize"], 3);
    }
}
