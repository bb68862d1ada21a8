//! Index segments: which pack holds each blob. One or more are written by each push after
//! its packs are durable; the in-memory [`Index`] is the union of all segments.
//!
//! ```text
//! magic "KNDOIDX1" | pack count u32 LE | per pack: pack id [32] | entry count u32 LE | entries
//! ```
//! Entries use the pack trailer's encoding. In an encrypted repository the whole segment is
//! sealed. A segment's name is the BLAKE3 of its stored bytes.

use std::collections::HashMap;

use super::ids::{Id, Reader};
use super::pack::PackEntry;

/// First eight bytes of every index segment.
pub const INDEX_MAGIC: &[u8; 8] = b"KNDOIDX1";

/// Where a blob lives: its pack and its place in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobLocation {
    /// The pack's id (its object name).
    pub pack: Id,
    /// The blob's entry in that pack.
    pub entry: PackEntry,
}

/// The entries of one segment, grouped by pack.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexSegment {
    /// (pack id, that pack's entries recorded by this segment).
    pub packs: Vec<(Id, Vec<PackEntry>)>,
}

impl IndexSegment {
    /// Number of blob entries.
    pub fn len(&self) -> usize {
        self.packs.iter().map(|(_, e)| e.len()).sum()
    }

    /// True when it records nothing.
    pub fn is_empty(&self) -> bool {
        self.packs.iter().all(|(_, e)| e.is_empty())
    }

    /// Cuts the segment into segments of at most `max_entries` entries (a pack's entries
    /// stay together).
    pub fn split(self, max_entries: usize) -> Vec<IndexSegment> {
        let mut out = vec![IndexSegment::default()];
        for (pack, entries) in self.packs {
            let last = out.last().expect("never empty");
            if last.len() + entries.len() > max_entries && !last.is_empty() {
                out.push(IndexSegment::default());
            }
            out.last_mut()
                .expect("never empty")
                .packs
                .push((pack, entries));
        }
        out.retain(|s| !s.is_empty());
        out
    }

    /// Serialises the segment.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 + self.len() * (super::pack::ENTRY_LEN + 1));
        out.extend_from_slice(INDEX_MAGIC);
        out.extend_from_slice(&(self.packs.len() as u32).to_le_bytes());
        for (pack, entries) in &self.packs {
            out.extend_from_slice(&pack.0);
            out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
            for e in entries {
                e.encode_into(&mut out);
            }
        }
        out
    }

    /// Parses a segment; damaged input is an error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<IndexSegment, &'static str> {
        let mut r = Reader::new(bytes);
        if r.take(8) != Some(INDEX_MAGIC.as_slice()) {
            return Err("not an index segment (bad magic)");
        }
        let n_packs = r.u32().ok_or("truncated")?;
        let mut packs = Vec::new();
        for _ in 0..n_packs {
            let pack = r.id().ok_or("truncated")?;
            let n = r.u32().ok_or("truncated")? as usize;
            // Guard the allocation against a corrupt count.
            let mut entries = Vec::with_capacity(n.min(bytes.len() / super::pack::ENTRY_LEN));
            for _ in 0..n {
                entries.push(PackEntry::decode_from(&mut r).ok_or("truncated or bad entry")?);
            }
            packs.push((pack, entries));
        }
        if !r.is_empty() {
            return Err("trailing bytes");
        }
        Ok(IndexSegment { packs })
    }
}

/// Every blob the repository holds, by id.
///
/// Held whole by pull, verify and gc, so it is kept small: a blob costs its 32-byte id
/// and a 20-byte [`Slot`] (pack ids are numbered, not repeated per blob): 53 bytes per
/// table slot with its control byte, where a full [`BlobLocation`] took 113.
#[derive(Debug, Default)]
pub struct Index {
    blobs: HashMap<Id, Slot>,
    packs: Vec<Id>,
    /// Rank of each pack (see [`Index::add_segment_ranked`]).
    ranks: Vec<u8>,
    /// Segments a reader skipped as unreadable, with why (named in errors).
    pub skipped: Vec<String>,
    pack_numbers: HashMap<Id, u32>,
}

/// A blob's place: its pack's number in [`Index`]`::packs` and its pack entry minus the id.
#[derive(Debug, Clone, Copy)]
struct Slot {
    pack: u32,
    offset: u32,
    stored_len: u32,
    raw_len: u32,
    codec: super::pack::Codec,
}

impl Index {
    /// Adds every entry of `segment`. A blob stored twice (two racing pushes) keeps the
    /// first location seen; both are valid copies.
    pub fn add_segment(&mut self, segment: &IndexSegment) {
        self.add_segment_ranked(segment, |_| Some(0));
    }

    /// Adds the entries of `segment` whose pack `rank` accepts (`Some`); a blob already
    /// known moves to a pack of lower rank. Readers use it to skip packs that are gone and
    /// to prefer copies gc has not condemned.
    pub fn add_segment_ranked(&mut self, segment: &IndexSegment, rank: impl Fn(&Id) -> Option<u8>) {
        for (pack, entries) in &segment.packs {
            let Some(r) = rank(pack) else {
                continue;
            };
            let number = *self.pack_numbers.entry(*pack).or_insert_with(|| {
                self.packs.push(*pack);
                self.ranks.push(r);
                (self.packs.len() - 1) as u32
            });
            for e in entries {
                let slot = Slot {
                    pack: number,
                    offset: e.offset,
                    stored_len: e.stored_len,
                    raw_len: e.raw_len,
                    codec: e.codec,
                };
                match self.blobs.entry(e.id) {
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(slot);
                    }
                    std::collections::hash_map::Entry::Occupied(mut o) => {
                        if self.ranks[o.get().pack as usize] > r {
                            o.insert(slot);
                        }
                    }
                }
            }
        }
    }

    /// For an error about a blob not found: the damaged segments that were skipped.
    pub fn skipped_note(&self) -> String {
        if self.skipped.is_empty() {
            String::new()
        } else {
            format!(
                "; damaged index segment(s) skipped: {} (run `kando repo repair`)",
                self.skipped.join(", ")
            )
        }
    }

    /// Where blob `id` is, if the repository has it.
    pub fn get(&self, id: &Id) -> Option<BlobLocation> {
        self.blobs.get(id).map(|slot| BlobLocation {
            pack: self.packs[slot.pack as usize],
            entry: PackEntry {
                id: *id,
                offset: slot.offset,
                stored_len: slot.stored_len,
                raw_len: slot.raw_len,
                codec: slot.codec,
            },
        })
    }

    /// Number of distinct blobs.
    pub fn len(&self) -> usize {
        self.blobs.len()
    }

    /// True when the repository holds no blob.
    pub fn is_empty(&self) -> bool {
        self.blobs.is_empty()
    }

    /// Iterates over every blob id.
    pub fn ids(&self) -> impl Iterator<Item = &Id> {
        self.blobs.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::pack::Codec;
    use proptest::prelude::*;

    fn arb_entry() -> impl Strategy<Value = PackEntry> {
        (
            any::<[u8; 32]>(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<bool>(),
        )
            .prop_map(|(id, offset, stored_len, raw_len, z)| PackEntry {
                id: Id(id),
                offset,
                stored_len,
                raw_len,
                codec: if z { Codec::Zstd } else { Codec::Raw },
            })
    }

    fn arb_segment() -> impl Strategy<Value = IndexSegment> {
        proptest::collection::vec(
            (
                any::<[u8; 32]>().prop_map(Id),
                proptest::collection::vec(arb_entry(), 0..8),
            ),
            0..6,
        )
        .prop_map(|packs| IndexSegment { packs })
    }

    proptest! {
        #[test]
        fn roundtrip(seg in arb_segment()) {
            prop_assert_eq!(IndexSegment::decode(&seg.encode()).unwrap(), seg);
        }

        #[test]
        fn truncation_is_an_error(seg in arb_segment(), cut in any::<prop::sample::Index>()) {
            let bytes = seg.encode();
            let cut = cut.index(bytes.len());
            prop_assert!(IndexSegment::decode(&bytes[..cut]).is_err());
        }

        /// The compact index answers exactly what the segments say, first location first,
        /// including ids repeated within and across segments and packs named twice.
        #[test]
        fn index_finds_every_blob_where_first_stored(
            segs in proptest::collection::vec(arb_segment(), 1..4),
            repeat in any::<bool>(),
        ) {
            let mut segs = segs;
            if repeat {
                // The same pack and blobs again, as a racing push would write them.
                let again = segs[0].clone();
                segs.push(again);
            }
            let mut index = Index::default();
            let mut expected = HashMap::new();
            for seg in &segs {
                index.add_segment(seg);
                for (pack, entries) in &seg.packs {
                    for e in entries {
                        expected.entry(e.id).or_insert(BlobLocation { pack: *pack, entry: *e });
                    }
                }
            }
            prop_assert_eq!(index.len(), expected.len());
            for (id, loc) in &expected {
                prop_assert_eq!(index.get(id), Some(*loc));
            }
            prop_assert_eq!(index.get(&Id([0xee; 32])), expected.get(&Id([0xee; 32])).copied());
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = IndexSegment::decode(&bytes);
            let mut with_magic = INDEX_MAGIC.to_vec();
            with_magic.extend_from_slice(&bytes);
            let _ = IndexSegment::decode(&with_magic);
        }
    }
}
