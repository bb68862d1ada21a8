//! The pack format: compressed blobs back to back, then a trailer that describes them, so
//! the index can always be rebuilt from packs alone.
//!
//! ```text
//! blob 0 | blob 1 | … | entry 0 | entry 1 | … | count: u32 LE | magic "KNDOPAK1"
//! entry = id [32] | offset u32 LE | stored length u32 LE | raw length u32 LE | codec u8
//! ```
//! A pack's name is the BLAKE3 of all its bytes, so any damage is detected on read.
//!
//! In an encrypted repository every blob is sealed (codecs [`Codec::SealedRaw`],
//! [`Codec::SealedZstd`]) and the entries are sealed together, so the pack ends
//! `sealed entries | its length: u32 LE | magic "KNDOPAKS"`.

use std::borrow::Cow;

use bytes::Bytes;

use super::crypto::{CryptoError, Keys, Sealed};
use super::ids::{Id, Reader};

/// Last eight bytes of every pack.
pub const PACK_MAGIC: &[u8; 8] = b"KNDOPAK1";
/// Last eight bytes of every pack of an encrypted repository.
pub const SEALED_PACK_MAGIC: &[u8; 8] = b"KNDOPAKS";
/// Bytes of one trailer entry.
pub const ENTRY_LEN: usize = 32 + 4 + 4 + 4 + 1;
/// Bytes after the entries: count and magic.
pub const FOOTER_LEN: usize = 4 + 8;

/// How a blob's bytes are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Codec {
    /// Stored as is (compression did not shrink it).
    Raw = 0,
    /// One zstd frame.
    Zstd = 1,
    /// [`Codec::Raw`], then sealed (encrypted repositories).
    SealedRaw = 2,
    /// [`Codec::Zstd`], then sealed (encrypted repositories).
    SealedZstd = 3,
}

impl Codec {
    fn from_u8(b: u8) -> Option<Codec> {
        match b {
            0 => Some(Codec::Raw),
            1 => Some(Codec::Zstd),
            2 => Some(Codec::SealedRaw),
            3 => Some(Codec::SealedZstd),
            _ => None,
        }
    }

    /// True for the codecs of encrypted repositories.
    pub fn is_sealed(self) -> bool {
        matches!(self, Codec::SealedRaw | Codec::SealedZstd)
    }
}

/// Where one blob sits in its pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackEntry {
    /// BLAKE3 of the blob's raw (uncompressed) bytes.
    pub id: Id,
    /// Byte offset of the stored blob inside the pack.
    pub offset: u32,
    /// Stored (possibly compressed) length.
    pub stored_len: u32,
    /// Raw length after decoding.
    pub raw_len: u32,
    /// How the stored bytes decode.
    pub codec: Codec,
}

impl PackEntry {
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id.0);
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.stored_len.to_le_bytes());
        out.extend_from_slice(&self.raw_len.to_le_bytes());
        out.push(self.codec as u8);
    }

    pub(crate) fn decode_from(r: &mut Reader<'_>) -> Option<PackEntry> {
        Some(PackEntry {
            id: r.id()?,
            offset: r.u32()?,
            stored_len: r.u32()?,
            raw_len: r.u32()?,
            codec: Codec::from_u8(r.u8()?)?,
        })
    }
}

/// Accumulates blobs into one pack in memory.
#[derive(Debug, Default)]
pub struct PackBuilder {
    data: Vec<u8>,
    entries: Vec<PackEntry>,
}

impl PackBuilder {
    /// An empty pack with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        PackBuilder {
            data: Vec::with_capacity(capacity),
            entries: Vec::new(),
        }
    }

    /// Appends one stored blob.
    pub fn add(&mut self, id: Id, codec: Codec, raw_len: u32, stored: &[u8]) {
        self.entries.push(PackEntry {
            id,
            offset: self.data.len() as u32,
            stored_len: stored.len() as u32,
            raw_len,
            codec,
        });
        self.data.extend_from_slice(stored);
    }

    /// Bytes of blob data so far.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when no blob was added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends the trailer (sealed in an encrypted repository) and returns the pack's
    /// bytes, its name and its entries.
    pub fn finish(mut self, keys: &Keys) -> (Vec<u8>, Id, Vec<PackEntry>) {
        let mut trailer = Vec::with_capacity(self.entries.len() * ENTRY_LEN);
        for e in &self.entries {
            e.encode_into(&mut trailer);
        }
        if keys.is_encrypted() {
            let sealed = keys.seal(Sealed::PackTrailer, trailer);
            self.data.reserve(sealed.len() + FOOTER_LEN);
            self.data.extend_from_slice(&sealed);
            self.data
                .extend_from_slice(&(sealed.len() as u32).to_le_bytes());
            self.data.extend_from_slice(SEALED_PACK_MAGIC);
        } else {
            self.data.reserve(trailer.len() + FOOTER_LEN);
            self.data.extend_from_slice(&trailer);
            self.data
                .extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
            self.data.extend_from_slice(PACK_MAGIC);
        }
        let id = Id::of(&self.data);
        (self.data, id, self.entries)
    }
}

/// Fills packs up to a target size. A pack is sealed before a blob would overflow it, so
/// its buffer never regrows (a regrown buffer doubles: 16 MiB held for a 9 MiB pack), and
/// the next buffer is allocated only by the next blob, after the caller has dealt with the
/// sealed pack (push: once its upload has a slot). Push and gc's rewrites share this rule.
#[derive(Debug)]
pub struct Packer {
    target: usize,
    current: PackBuilder,
}

impl Packer {
    /// Packs of about `target` bytes of blob data.
    pub fn new(target: usize) -> Self {
        Packer {
            target,
            current: PackBuilder::default(),
        }
    }

    /// Takes the pack being filled if a blob of `stored_len` bytes would overflow it.
    pub fn seal_before(&mut self, stored_len: usize) -> Option<PackBuilder> {
        if !self.current.is_empty() && self.current.len() + stored_len > self.target {
            Some(std::mem::take(&mut self.current))
        } else {
            None
        }
    }

    /// Appends a blob (call [`Packer::seal_before`] first).
    pub fn add(&mut self, id: Id, codec: Codec, raw_len: u32, stored: &[u8]) {
        if self.current.data.capacity() == 0 {
            // Slack for a last blob that overflows by little: pack sizes vary with chunks.
            self.current.data.reserve(self.target + 64 * 1024);
        }
        self.current.add(id, codec, raw_len, stored);
    }

    /// The last, partly filled pack, if any.
    pub fn finish(self) -> Option<PackBuilder> {
        (!self.current.is_empty()).then_some(self.current)
    }
}

/// Why a pack's trailer could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// Not a pack, or cut short.
    #[error("pack trailer is damaged: {0}")]
    Damaged(&'static str),
    /// A sealed trailer that does not decrypt, or a pack of the other kind of repository.
    #[error("pack trailer: {0}")]
    Sealed(String),
}

/// Reads a pack's trailer from the whole pack's bytes, checking every entry lies inside
/// the blob area.
pub fn read_trailer(pack: &[u8], keys: &Keys) -> Result<Vec<PackEntry>, PackError> {
    if pack.len() < FOOTER_LEN {
        return Err(PackError::Damaged("shorter than its footer"));
    }
    let footer = &pack[pack.len() - FOOTER_LEN..];
    let len_field = u32::from_le_bytes(footer[..4].try_into().unwrap()) as usize;
    let sealed = match (&footer[4..], keys.is_encrypted()) {
        (m, false) if m == PACK_MAGIC => false,
        (m, true) if m == SEALED_PACK_MAGIC => true,
        (m, _) if m == PACK_MAGIC || m == SEALED_PACK_MAGIC => return Err(PackError::Sealed(
            "an encrypted pack in a plain repository, or a plain one in an encrypted repository"
                .into(),
        )),
        _ => return Err(PackError::Damaged("bad magic")),
    };
    let trailer_len = if sealed {
        Some(len_field)
    } else {
        len_field.checked_mul(ENTRY_LEN)
    }
    .and_then(|n| n.checked_add(FOOTER_LEN))
    .ok_or(PackError::Damaged("entry count overflows"))?;
    if trailer_len > pack.len() {
        return Err(PackError::Damaged("trailer larger than the pack"));
    }
    let data_len = pack.len() - trailer_len;
    let trailer = &pack[data_len..pack.len() - FOOTER_LEN];
    let opened;
    let entry_bytes = if sealed {
        opened = keys
            .open(Sealed::PackTrailer, trailer)
            .map_err(|e| PackError::Sealed(e.to_string()))?;
        if opened.len() % ENTRY_LEN != 0 {
            return Err(PackError::Damaged("partial entry"));
        }
        &opened[..]
    } else {
        trailer
    };
    let count = entry_bytes.len() / ENTRY_LEN;
    let mut r = Reader::new(entry_bytes);
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        let e = PackEntry::decode_from(&mut r).ok_or(PackError::Damaged("bad entry"))?;
        if e.codec.is_sealed() != sealed {
            return Err(PackError::Damaged("entry codec does not match the pack"));
        }
        let end = e.offset as u64 + e.stored_len as u64;
        if end > data_len as u64 {
            return Err(PackError::Damaged("entry points past the blob area"));
        }
        entries.push(e);
    }
    Ok(entries)
}

/// Encodes blobs for storage on one thread: zstd (reusing one compression context and one
/// output buffer, so a push does not allocate and fault in a fresh context per chunk), raw
/// when that does not shrink them, then sealed in an encrypted repository.
pub struct BlobEncoder {
    compressor: Option<zstd::bulk::Compressor<'static>>,
    scratch: Vec<u8>,
    keys: Keys,
}

impl BlobEncoder {
    /// An encoder compressing at zstd `level`, or never for `None`.
    pub fn new(level: Option<i32>, keys: Keys) -> std::io::Result<BlobEncoder> {
        Ok(BlobEncoder {
            compressor: level.map(zstd::bulk::Compressor::new).transpose()?,
            scratch: Vec::new(),
            keys,
        })
    }

    /// The codec and stored bytes of blob `id` with content `raw`. A plain raw blob shares
    /// `raw`'s buffer.
    pub fn encode(&mut self, id: &Id, raw: &Bytes) -> (Codec, Bytes) {
        let compressed = self.compressor.as_mut().and_then(|c| {
            // Room for one byte less than the input: output that does not shrink fails
            // fast with "destination too small" and the blob is stored raw.
            self.scratch.clear();
            self.scratch.reserve(raw.len().saturating_sub(1));
            let room = raw.len().saturating_sub(1);
            let dst = &mut self.scratch;
            match c.compress_to_buffer(raw, dst) {
                Ok(n) if n <= room => Some(n),
                _ => None,
            }
        });
        match (compressed, self.keys.is_encrypted()) {
            (None, false) => (Codec::Raw, raw.clone()),
            (Some(n), false) => (Codec::Zstd, Bytes::copy_from_slice(&self.scratch[..n])),
            (None, true) => (
                Codec::SealedRaw,
                self.keys.seal(Sealed::Blob(id), raw.to_vec()).into(),
            ),
            (Some(n), true) => {
                let mut sealed = Vec::with_capacity(n + super::crypto::SEAL_OVERHEAD);
                sealed.extend_from_slice(&self.scratch[..n]);
                (
                    Codec::SealedZstd,
                    self.keys.seal(Sealed::Blob(id), sealed).into(),
                )
            }
        }
    }
}

/// Why a stored blob could not be turned back into its bytes.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// Decompression failed or gave the wrong length.
    #[error("blob {id} does not decode: {why}")]
    Undecodable {
        /// The blob.
        id: Id,
        /// What went wrong.
        why: String,
    },
    /// The decoded bytes do not hash to the id.
    #[error("blob {id} is corrupt: its content hashes to {actual}")]
    HashMismatch {
        /// The blob.
        id: Id,
        /// What the bytes hash to.
        actual: Id,
    },
    /// A sealed blob that does not decrypt.
    #[error("blob {id}: {source}")]
    Unsealable {
        /// The blob.
        id: Id,
        /// Why.
        source: CryptoError,
    },
    /// A sealed blob in a plain repository or a plain one in an encrypted repository.
    #[error("blob {id} is {kind} but the repository is not: refusing it")]
    WrongKind {
        /// The blob.
        id: Id,
        /// "encrypted" or "plain".
        kind: &'static str,
    },
}

/// Decodes a stored blob and checks it hashes to `entry.id`. In an encrypted repository
/// only sealed blobs are accepted, so a plain blob slipped in is refused, not trusted.
pub fn decode_blob(entry: &PackEntry, stored: &[u8], keys: &Keys) -> Result<Vec<u8>, BlobError> {
    let id = entry.id;
    if entry.codec.is_sealed() != keys.is_encrypted() {
        let kind = if entry.codec.is_sealed() {
            "encrypted"
        } else {
            "plain"
        };
        return Err(BlobError::WrongKind { id, kind });
    }
    let body = if keys.is_encrypted() {
        Cow::Owned(
            keys.open(Sealed::Blob(&id), stored)
                .map_err(|source| BlobError::Unsealable { id, source })?,
        )
    } else {
        Cow::Borrowed(stored)
    };
    let raw = match entry.codec {
        Codec::Raw | Codec::SealedRaw => body.into_owned(),
        Codec::Zstd | Codec::SealedZstd => zstd::bulk::decompress(&body, entry.raw_len as usize)
            .map_err(|e| BlobError::Undecodable {
                id,
                why: e.to_string(),
            })?,
    };
    if raw.len() != entry.raw_len as usize {
        return Err(BlobError::Undecodable {
            id: entry.id,
            why: format!("{} bytes, expected {}", raw.len(), entry.raw_len),
        });
    }
    let actual = keys.chunk_id(&raw);
    if actual != entry.id {
        return Err(BlobError::HashMismatch {
            id: entry.id,
            actual,
        });
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use crate::repo::crypto::test_keys as encrypted;

    fn build(blobs: &[Vec<u8>], keys: &Keys) -> (Vec<u8>, Vec<PackEntry>) {
        let mut b = PackBuilder::default();
        let mut enc = BlobEncoder::new(Some(3), keys.clone()).unwrap();
        for raw in blobs {
            let id = keys.chunk_id(raw);
            let (codec, stored) = enc.encode(&id, &Bytes::from(raw.clone()));
            b.add(id, codec, raw.len() as u32, &stored);
        }
        let (bytes, id, entries) = b.finish(keys);
        assert_eq!(id, Id::of(&bytes));
        (bytes, entries)
    }

    proptest! {
        #[test]
        fn trailer_roundtrip(blobs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..2000), 0..20), sealed in any::<bool>()) {
            let keys = if sealed { encrypted() } else { Keys::plain() };
            let (bytes, entries) = build(&blobs, &keys);
            let decoded = read_trailer(&bytes, &keys).unwrap();
            prop_assert_eq!(&decoded, &entries);
            for (e, raw) in decoded.iter().zip(&blobs) {
                let stored = &bytes[e.offset as usize..(e.offset + e.stored_len) as usize];
                prop_assert_eq!(&decode_blob(e, stored, &keys).unwrap(), raw);
            }
            // Neither kind of pack is read as the other, nor with another key.
            let other = if sealed { Keys::plain() } else { encrypted() };
            prop_assert!(read_trailer(&bytes, &other).is_err());
            if sealed {
                prop_assert!(read_trailer(&bytes, &encrypted()).is_err());
            }
            if let Some(e) = entries.first() {
                let stored = &bytes[e.offset as usize..(e.offset + e.stored_len) as usize];
                prop_assert!(decode_blob(e, stored, &other).is_err());
            }
        }

        #[test]
        fn damaged_trailer_is_an_error_not_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400), cut in 0usize..400) {
            let _ = read_trailer(&bytes[..cut.min(bytes.len())], &Keys::plain());
            let _ = read_trailer(&bytes[..cut.min(bytes.len())], &encrypted());
        }

        #[test]
        fn truncated_or_flipped_packs_fail(blobs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..500), 1..5), pos in any::<prop::sample::Index>(), sealed in any::<bool>()) {
            let keys = if sealed { encrypted() } else { Keys::plain() };
            let (bytes, entries) = build(&blobs, &keys);
            // Truncation: every proper prefix is rejected or yields entries that still fit.
            let cut = pos.index(bytes.len());
            if let Ok(es) = read_trailer(&bytes[..cut], &keys) { prop_assert!(es.len() <= entries.len()); }
            // A flipped byte in blob data is caught by the blob hash.
            let e = entries[0];
            if e.stored_len > 0 {
                let mut stored = bytes[e.offset as usize..(e.offset + e.stored_len) as usize].to_vec();
                let i = pos.index(stored.len());
                stored[i] ^= 0x40;
                prop_assert!(decode_blob(&e, &stored, &keys).is_err());
            }
        }
    }

    #[test]
    fn incompressible_blobs_are_stored_raw() {
        let mut raw = vec![0u8; 4096];
        blake3::Hasher::new().finalize_xof().fill(&mut raw);
        let raw = Bytes::from(raw);
        let mut zstd = BlobEncoder::new(Some(3), Keys::plain()).unwrap();
        let (codec, stored) = zstd.encode(&Id::of(&raw), &raw);
        assert_eq!(codec, Codec::Raw);
        assert_eq!(stored, raw);
        let a = Bytes::from(vec![b'a'; 4096]);
        let (codec, _) = zstd.encode(&Id::of(&a), &a);
        assert_eq!(codec, Codec::Zstd);
        // The encoder is reused: incompressible again after compressible.
        assert_eq!(zstd.encode(&Id::of(&raw), &raw).0, Codec::Raw);
        let mut never = BlobEncoder::new(None, Keys::plain()).unwrap();
        assert_eq!(never.encode(&Id::of(&a), &a).0, Codec::Raw);
        let keys = encrypted();
        let mut sealed = BlobEncoder::new(Some(3), keys.clone()).unwrap();
        let (codec, stored) = sealed.encode(&keys.chunk_id(&a), &a);
        assert_eq!(codec, Codec::SealedZstd);
        assert!(!stored.windows(16).any(|w| w == &a[..16]));
        let (codec, stored) = sealed.encode(&keys.chunk_id(&raw), &raw);
        assert_eq!(codec, Codec::SealedRaw);
        assert_eq!(stored.len(), raw.len() + crate::repo::crypto::SEAL_OVERHEAD);
        // Empty blobs encode too.
        let empty = Bytes::new();
        assert_eq!(zstd.encode(&Id::of(&empty), &empty).0, Codec::Raw);
    }
}
