//! gzip (RFC 1952) and zlib (RFC 1950) framing around deflate data: recognising a stream
//! and reading its header, which is kept verbatim.

use std::io::{self, Read};

use super::inflate::Input;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Gzip,
    Zlib,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Gzip => "gzip",
            Format::Zlib => "zlib",
        }
    }

    /// Trailer bytes after the deflate data (CRC-32 and size; Adler-32).
    pub fn trailer_len(self) -> usize {
        match self {
            Format::Gzip => 8,
            Format::Zlib => 4,
        }
    }
}

pub fn is_gzip(head: &[u8]) -> bool {
    head.len() >= 3 && head[..3] == [0x1f, 0x8b, 0x08]
}

/// A zlib header: deflate, window ≤ 32 KiB, check bits right, no preset dictionary.
pub fn is_zlib(head: &[u8]) -> bool {
    head.len() >= 2
        && head[0] & 0x0f == 8
        && head[0] >> 4 <= 7
        && (head[0] as u16 * 256 + head[1] as u16).is_multiple_of(31)
        && head[1] & 0x20 == 0
}

/// What the start of a stream is.
pub fn detect(head: &[u8]) -> Option<Format> {
    if is_gzip(head) {
        Some(Format::Gzip)
    } else if is_zlib(head) {
        Some(Format::Zlib)
    } else {
        None
    }
}

/// The compression level the header hints at, for the model's first try.
pub fn level_hint(format: Format, header: &[u8]) -> u8 {
    match format {
        // Go (mongodump --gzip) writes OS 255 and XFL 0 at its default level; so does
        // Python at levels 2–8, which the trials then find.
        Format::Gzip => match (header.get(8), header.get(9)) {
            (Some(2), _) => 9,
            (Some(4), _) => 1,
            (Some(0), Some(255)) => super::recipe::GO_DEFAULT,
            _ => 6,
        },
        Format::Zlib => match header.get(1).map(|f| f >> 6) {
            Some(0) => 1,
            Some(1) => 3,
            Some(3) => 9,
            _ => 6,
        },
    }
}

/// Reads a header; `Ok(Err(bytes))` when it is not complete or not valid (the bytes read).
pub fn read_header<R: Read>(
    input: &mut Input<R>,
    format: Format,
) -> io::Result<Result<Vec<u8>, Vec<u8>>> {
    let mut h = input.read_bytes(if format == Format::Gzip { 10 } else { 2 })?;
    if format == Format::Zlib {
        return Ok(if is_zlib(&h) { Ok(h) } else { Err(h) });
    }
    if h.len() < 10 || !is_gzip(&h) || h[3] & 0xe0 != 0 {
        return Ok(Err(h));
    }
    let flags = h[3];
    if flags & 4 != 0 {
        let n = input.read_bytes(2)?;
        h.extend_from_slice(&n);
        if n.len() < 2 {
            return Ok(Err(h));
        }
        let len = u16::from_le_bytes([n[0], n[1]]) as usize;
        let extra = input.read_bytes(len)?;
        let short = extra.len() < len;
        h.extend_from_slice(&extra);
        if short {
            return Ok(Err(h));
        }
    }
    for flag in [8u8, 16] {
        if flags & flag != 0 {
            // A zero-terminated name or comment; bounded so a bad header cannot grow memory.
            loop {
                let b = input.read_bytes(1)?;
                let Some(&b) = b.first() else {
                    return Ok(Err(h));
                };
                h.push(b);
                if b == 0 {
                    break;
                }
                if h.len() > 1 << 20 {
                    return Ok(Err(h));
                }
            }
        }
    }
    if flags & 2 != 0 {
        let crc = input.read_bytes(2)?;
        let short = crc.len() < 2;
        h.extend_from_slice(&crc);
        if short {
            return Ok(Err(h));
        }
    }
    Ok(Ok(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_formats() {
        assert_eq!(detect(&[0x1f, 0x8b, 0x08, 0]), Some(Format::Gzip));
        assert_eq!(detect(&[0x78, 0x9c]), Some(Format::Zlib));
        assert_eq!(detect(&[0x78, 0x01]), Some(Format::Zlib));
        assert_eq!(detect(&[0x78, 0xda]), Some(Format::Zlib));
        assert_eq!(detect(b"-- PostgreSQL"), None);
        assert_eq!(detect(b"{\"a\":1}"), None);
        assert_eq!(detect(&[0x1f, 0x8b]), None);
    }
}
