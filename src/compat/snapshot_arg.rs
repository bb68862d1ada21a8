//! The `--kopia-snapshot` argument: the JSON `location push` emitted, or a bare id.

use anyhow::{anyhow, bail, Result};

use crate::repo::manifest::is_snapshot_id;

/// Extracts the snapshot id from `--kopia-snapshot`.
pub fn parse_snapshot_arg(arg: &str) -> Result<String> {
    let arg = arg.trim();
    let id = if arg.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(arg)
            .map_err(|e| anyhow!("--kopia-snapshot is not valid snapshot JSON: {e}"))?;
        let obj = v
            .as_object()
            .ok_or_else(|| anyhow!("--kopia-snapshot JSON must be an object"))?;
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("id"))
            .and_then(|(_, v)| v.as_str())
            .ok_or_else(|| anyhow!("--kopia-snapshot JSON has no string \"id\" field"))?
            .to_string()
    } else {
        arg.to_string()
    };
    if !is_snapshot_id(&id) {
        let shown: String = id.chars().take(80).collect();
        bail!("--kopia-snapshot {shown:?} is not a kando snapshot id (32 lowercase hex digits)");
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn garbage_never_panics(s in ".{0,200}") {
            let _ = parse_snapshot_arg(&s);
        }
    }

    #[test]
    fn accepts_json_and_bare_ids() {
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(parse_snapshot_arg(id).unwrap(), id);
        let json = format!(r#"{{"id":"{id}","logicalSize":5,"physicalSize":0}}"#);
        assert_eq!(parse_snapshot_arg(&json).unwrap(), id);
        assert!(parse_snapshot_arg("{not json").is_err());
        assert!(parse_snapshot_arg(r#"{"id":5}"#).is_err());
        assert!(parse_snapshot_arg("../../etc").is_err());
        assert!(parse_snapshot_arg("").is_err());
    }
}
