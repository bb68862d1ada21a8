//! Snapshot paths and path refs.
//!
//! A ref is an empty-bodied object whose key says everything:
//! `refs/<escaped path components>/!s.<time ns, 16 hex digits>.<snapshot id>`. Listing
//! `refs/<P>/` finds every snapshot at P or under P/ without reading a manifest, and
//! whole-component matching falls out of the key layout.
//!
//! Escaping keeps keys to the characters every S3 server handles (AWS's "safe" set): a
//! byte outside `[A-Za-z0-9._-]` becomes `!` and two uppercase hex digits. Escaping never
//! produces `!s`, so a component starting with `!s.` is always a ref. Keys stay short
//! because some servers limit them well below S3's 1024 bytes (s3s-fs: ~160).
//!
//! In an encrypted repository a path component is named instead by 16 hex digits of a
//! keyed hash of the path up to it (`a/b` → `tag("a")/tag("a/b")`), so keys keep the tree's
//! shape (prefix listing still works) but no name; the ref's body holds the sealed path.

use super::crypto::Keys;
use super::manifest::is_snapshot_id;

/// Start of the last key component of every ref.
const REF_LEAF: &str = "!s.";

/// Longest accepted path, in bytes.
pub const MAX_PATH_LEN: usize = 1024;

/// Longest key component (file name) every backend stores: 255 bytes (Linux file systems).
pub const MAX_KEY_COMPONENT: usize = 255;
/// Longest object key S3 accepts, in bytes.
pub const MAX_KEY_LEN: usize = 1024;

/// Cleans a path (`--path`, a profile's prefix, `--repo-dir`) the way Go's `path.Join` does for upstream kando (no empty or `.`
/// components, no leading or trailing `/`), and rejects what could escape or confuse:
/// `..`, NUL and control characters, over-long paths.
pub fn normalize_path(path: &str) -> Result<String, String> {
    if path.len() > MAX_PATH_LEN {
        return Err(format!(
            "it is {} bytes long; the limit is {MAX_PATH_LEN}",
            path.len()
        ));
    }
    if path.chars().any(|c| c.is_control()) {
        return Err("it contains a control character (NUL, newline…)".to_string());
    }
    let mut parts = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(format!("{path:?} contains '..'; give a plain path")),
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

fn escape_component(c: &str) -> String {
    let mut out = String::with_capacity(c.len());
    for b in c.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
            out.push(b as char);
        } else {
            out.push_str(&format!("!{b:02X}"));
        }
    }
    // "." and ".." never reach here (normalize_path), but "..." etc. are fine as keys.
    out
}

fn unescape_component(c: &str) -> Option<String> {
    let bytes = c.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'!' {
            let hex = c.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Hex digits of a keyed path component.
const TAG_HEX: usize = 16;

/// Checks, before anything is read or written, that a snapshot at `path` (normalised) can
/// be committed: every component of its ref key fits in [`MAX_KEY_COMPONENT`] bytes and the
/// whole key, after the `root_len` bytes the backend puts before it (its key prefix and a
/// `/`; 0 for none), in [`MAX_KEY_LEN`]. Escaping can triple a component (`é` becomes
/// `!C3!A9`), and an encrypted repository names every component with [`TAG_HEX`] digits,
/// so neither follows from the path's own length. Without this check a push would fail
/// only after uploading everything, when it writes the ref.
pub fn check_path_fits(path: &str, encrypted: bool, root_len: usize) -> Result<(), String> {
    let mut key_len = root_len + "refs/".len();
    if !path.is_empty() {
        for c in path.split('/') {
            let len = if encrypted {
                TAG_HEX
            } else {
                escape_component(c).len()
            };
            if len > MAX_KEY_COMPONENT {
                return Err(format!(
                    "--path component {c:?} becomes {len} bytes in the repository's keys (bytes other than letters, digits, '.', '_' and '-' take 3); the limit is {MAX_KEY_COMPONENT}"
                ));
            }
            key_len += len + 1;
        }
    }
    // The leaf: `!s.`, 16 hex digits of time, `.`, the snapshot id.
    key_len += REF_LEAF.len() + 16 + 1 + super::manifest::SNAPSHOT_ID_LEN;
    if key_len > MAX_KEY_LEN {
        return Err(format!(
            "--path {path:?} makes a {key_len}-byte object key; the limit is {MAX_KEY_LEN}"
        ));
    }
    Ok(())
}

/// The listing prefix for every ref at `path` (normalised) or below it.
pub fn refs_prefix(keys: &Keys, path: &str) -> String {
    if path.is_empty() {
        return "refs/".to_string();
    }
    let components: Vec<String> = if keys.is_encrypted() {
        let mut end = 0;
        path.split('/')
            .map(|c| {
                end += c.len();
                let tag = keys.name_tag(&path[..end]).expect("encrypted");
                end += 1; // the '/'
                hex::encode(&tag[..TAG_HEX / 2])
            })
            .collect()
    } else {
        path.split('/').map(escape_component).collect()
    };
    format!("refs/{}/", components.join("/"))
}

/// The key of the ref for snapshot `id` pushed to `path` at `time_ns`.
pub fn ref_key(keys: &Keys, path: &str, time_ns: u64, id: &str) -> String {
    format!("{}{REF_LEAF}{time_ns:016x}.{id}", refs_prefix(keys, path))
}

/// A ref parsed back from its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRef {
    /// The ref's key.
    pub key: String,
    /// Normalised path (in an encrypted repository, the key's tags until the repository
    /// replaces them with the path from the ref's sealed body).
    pub path: String,
    /// Push time, ns since the epoch.
    pub time_ns: u64,
    /// Snapshot id.
    pub id: String,
}

/// Parses a ref key; `None` for keys that are not refs (e.g. stray objects).
pub fn parse_ref_key(key: &str) -> Option<SnapshotRef> {
    let rest = key.strip_prefix("refs/")?;
    let (dir, leaf) = match rest.rfind('/') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => ("", rest),
    };
    let leaf = leaf.strip_prefix(REF_LEAF)?;
    let (time, id) = leaf.split_once('.')?;
    if time.len() != 16 || !is_snapshot_id(id) {
        return None;
    }
    let time_ns = u64::from_str_radix(time, 16).ok()?;
    let path = if dir.is_empty() {
        String::new()
    } else {
        dir.split('/')
            .map(unescape_component)
            .collect::<Option<Vec<_>>>()?
            .join("/")
    };
    Some(SnapshotRef {
        key: key.to_string(),
        path,
        time_ns,
        id: id.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normalizes_like_go_path_join() {
        assert_eq!(normalize_path("/mongo/x/rs.gz").unwrap(), "mongo/x/rs.gz");
        assert_eq!(normalize_path("a//b/./c/").unwrap(), "a/b/c");
        assert_eq!(normalize_path("").unwrap(), "");
        assert!(normalize_path("a/../b").is_err());
        assert!(normalize_path("a\0b").is_err());
        assert!(normalize_path(&"x".repeat(MAX_PATH_LEN + 1)).is_err());
    }

    #[test]
    fn prefix_matches_whole_components() {
        for keys in [Keys::plain(), encrypted()] {
            let k = &keys;
            let a = ref_key(k, "a/b", 1, &"0".repeat(32));
            let abc = ref_key(k, "a/bc", 1, &"0".repeat(32));
            assert!(a.starts_with(&refs_prefix(k, "a/b")));
            assert!(!abc.starts_with(&refs_prefix(k, "a/b")));
            assert!(ref_key(k, "a/b/c", 1, &"0".repeat(32)).starts_with(&refs_prefix(k, "a/b")));
            assert!(parse_ref_key(&a).is_some());
        }
    }

    use crate::repo::crypto::test_keys as encrypted;

    #[test]
    fn path_fit_matches_the_real_key() {
        let cjk = "数".repeat(29); // 87 bytes, escaped to 261
        assert!(check_path_fits(&cjk, false, 0).is_err());
        check_path_fits(&cjk, true, 0).unwrap();
        check_path_fits(&"数".repeat(28), false, 0).unwrap();
        let many = vec!["a"; 300].join("/");
        check_path_fits(&many, false, 0).unwrap();
        assert!(check_path_fits(&many, true, 0).is_err());
        // The check's length is the key's.
        for (path, keys) in [("a/é/c", Keys::plain()), ("a/é/c", encrypted())] {
            let key = ref_key(&keys, path, 1, &"0".repeat(32));
            let budget = MAX_KEY_LEN - key.len();
            check_path_fits(path, keys.is_encrypted(), budget).unwrap();
            assert!(check_path_fits(path, keys.is_encrypted(), budget + 1).is_err());
        }
    }

    #[test]
    fn encrypted_keys_hide_names_but_not_shape() {
        let keys = encrypted();
        let key = ref_key(&keys, "mongo/customers", 7, &"0".repeat(32));
        assert!(
            !key.contains("mongo") && !key.contains("customers"),
            "{key}"
        );
        // Same name under different parents: different tags.
        let x = refs_prefix(&keys, "a/x");
        let y = refs_prefix(&keys, "b/x");
        assert_ne!(x.rsplit('/').nth(1), y.rsplit('/').nth(1));
        assert_ne!(refs_prefix(&encrypted(), "a"), refs_prefix(&keys, "a"));
    }

    proptest! {
        #[test]
        fn ref_keys_roundtrip(comps in proptest::collection::vec("[^/\\x00-\\x1f]{1,12}", 0..4), t in any::<u64>(), id in "[0-9a-f]{32}") {
            let path = normalize_path(&comps.join("/"));
            prop_assume!(path.is_ok());
            let path = path.unwrap();
            let key = ref_key(&Keys::plain(), &path, t, &id);
            let r = parse_ref_key(&key).unwrap();
            prop_assert_eq!(r.path, path);
            prop_assert_eq!(r.time_ns, t);
            prop_assert_eq!(r.id, id);
        }

        #[test]
        fn garbage_keys_never_panic(key in ".{0,80}") {
            let _ = parse_ref_key(&key);
            let _ = parse_ref_key(&format!("refs/{key}"));
        }
    }
}
