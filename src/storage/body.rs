//! What the answer to a GET must satisfy before its bytes count as data, for every HTTP
//! backend: a body as long as the server said, and a ranged answer that is exactly the
//! range asked for. Anything else is an error (retried where a new GET may help), never
//! data.

use std::ops::Range;

use bytes::Bytes;

/// Checks a body against its `Content-Length`: a short body is a broken transfer.
pub fn check_length(body: &Bytes, content_length: Option<u64>) -> Result<(), String> {
    match content_length {
        Some(expected) if body.len() as u64 != expected => Err(format!(
            "truncated body: received {} of {expected} bytes",
            body.len()
        )),
        _ => Ok(()),
    }
}

/// The `Range` header value for `r` (non-empty).
pub fn range_header(r: &Range<u64>) -> String {
    format!("bytes={}-{}", r.start, r.end - 1)
}

/// Checks the bytes a ranged GET returned. Returns the requested bytes or why not.
pub fn check_range(
    body: Bytes,
    r: Range<u64>,
    content_range: Option<&str>,
) -> Result<Bytes, String> {
    let want = r.end - r.start;
    let parsed = content_range.and_then(parse_content_range);
    if body.len() as u64 == want {
        if let Some((start, _, _)) = parsed {
            if start != r.start {
                return Err(format!(
                    "asked for bytes {}-{}, the server sent {}",
                    r.start,
                    r.end - 1,
                    content_range.unwrap_or_default()
                ));
            }
        }
        // Without Content-Range a body of exactly the asked length is the range: a server
        // that ignored Range would send the whole object, which is longer whenever start > 0.
        return Ok(body);
    }
    match (content_range, parsed) {
        (None, _) => {
            // The server ignored Range and sent the whole object (HTTP 200).
            if r.end <= body.len() as u64 {
                Ok(body.slice(r.start as usize..r.end as usize))
            } else {
                Err(format!(
                    "range {r:?} is outside the object's {} bytes",
                    body.len()
                ))
            }
        }
        (Some(_), Some((_, _, Some(total)))) if r.end > total => {
            Err(format!("range {r:?} is outside the object's {total} bytes"))
        }
        (Some(cr), _) => Err(format!(
            "asked for {want} bytes at {}, received {} (Content-Range: {cr})",
            r.start,
            body.len()
        )),
    }
}

/// Parses "bytes START-END/TOTAL" (TOTAL may be "*").
pub fn parse_content_range(v: &str) -> Option<(u64, u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes")?.trim_start();
    let (span, total) = rest.split_once('/')?;
    let (start, end) = span.split_once('-')?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    Some((start.trim().parse().ok()?, end.trim().parse().ok()?, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranged_answers_are_checked() {
        let whole = Bytes::from_static(b"0123456789");
        // Proper 206.
        let got = check_range(Bytes::from_static(b"234"), 2..5, Some("bytes 2-4/10")).unwrap();
        assert_eq!(&got[..], b"234");
        // Range ignored: whole object, sliced.
        assert_eq!(&check_range(whole.clone(), 2..5, None).unwrap()[..], b"234");
        // Short answer at the end of the object.
        let e = check_range(Bytes::from_static(b"89"), 8..11, Some("bytes 8-9/10")).unwrap_err();
        assert!(e.contains("outside"), "{e}");
        // Truncated answer in the middle.
        assert!(check_range(Bytes::from_static(b"2"), 2..5, Some("bytes 2-4/10")).is_err());
        // Wrong offset.
        assert!(check_range(Bytes::from_static(b"345"), 2..5, Some("bytes 3-5/10")).is_err());
        assert_eq!(parse_content_range("bytes 0-0/*"), Some((0, 0, None)));
    }
}
