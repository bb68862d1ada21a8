//! Bit-level reading and writing in deflate's order (least significant bit first).

/// Where deflate bits come from: the streaming input at push, a recipe's stored header
/// bits at pull. Huffman tables are read through it (`huffman::read_dynamic_lengths`).
pub trait BitSource {
    /// The next `count` (≤ 24) bits, first bit lowest; `None` when the bits run out.
    fn bits(&mut self, count: u32) -> Option<u32>;
}

/// Reads bits from a byte slice, starting at a bit offset.
pub struct SliceBits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> SliceBits<'a> {
    pub fn new(data: &'a [u8], start_bit: usize) -> Self {
        SliceBits {
            data,
            pos: start_bit,
        }
    }

    pub fn position(&self) -> usize {
        self.pos
    }
}

impl BitSource for SliceBits<'_> {
    fn bits(&mut self, count: u32) -> Option<u32> {
        let mut v = 0u32;
        for i in 0..count {
            let byte = *self.data.get(self.pos / 8)?;
            v |= (((byte >> (self.pos % 8)) & 1) as u32) << i;
            self.pos += 1;
        }
        Some(v)
    }
}

/// Writes bits; the first byte may start at a bit phase (the bits below it stay zero and
/// are supplied by whatever precedes this output).
pub struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    used: u32,
    start_phase: u32,
}

impl BitWriter {
    pub fn new(phase: u32, capacity: usize) -> Self {
        debug_assert!(phase < 8);
        BitWriter {
            out: Vec::with_capacity(capacity),
            acc: 0,
            used: phase,
            start_phase: phase,
        }
    }

    /// Appends the low `count` (≤ 32) bits of `bits`.
    #[inline]
    pub fn put(&mut self, bits: u32, count: u32) {
        debug_assert!(count <= 32 && (count == 32 || bits >> count == 0));
        self.acc |= (bits as u64) << self.used;
        self.used += count;
        if self.used >= 32 {
            self.out.extend_from_slice(&(self.acc as u32).to_le_bytes());
            self.acc >>= 32;
            self.used -= 32;
        }
    }

    /// Appends `count` bits stored least significant bit first in `bytes`.
    pub fn put_bitstring(&mut self, bytes: &[u8], count: usize) {
        let mut left = count;
        for &b in bytes {
            if left == 0 {
                break;
            }
            let n = left.min(8) as u32;
            self.put((b as u32) & ((1u32 << n) - 1), n);
            left -= n as usize;
        }
    }

    /// Bits written, counting the start phase.
    pub fn bit_len(&self) -> u64 {
        self.out.len() as u64 * 8 + self.used as u64
    }

    /// The bytes, and the number of bits written after the start phase.
    pub fn finish(mut self) -> (Vec<u8>, u64) {
        let bits = self.bit_len() - self.start_phase as u64;
        while self.used > 0 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.used = self.used.saturating_sub(8);
        }
        (self.out, bits)
    }
}

/// Copies `count` bits starting at bit `start` of `data` into a fresh LSB-first string.
pub fn extract_bits(data: &[u8], start: u64, count: u64) -> Vec<u8> {
    let mut w = BitWriter::new(0, (count as usize).div_ceil(8));
    let mut r = SliceBits::new(data, start as usize);
    let mut left = count;
    while left > 0 {
        let n = left.min(16) as u32;
        w.put(r.bits(n).expect("range checked by the caller"), n);
        left -= n as u64;
    }
    w.finish().0
}

/// Reverses the low `len` bits of `code` (deflate sends Huffman codes high bit first).
pub fn reverse(code: u32, len: u32) -> u32 {
    code.reverse_bits() >> (32 - len.max(1)) & ((1u32 << len) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_and_reader_agree_at_every_phase() {
        for phase in 0..8 {
            let mut w = BitWriter::new(phase, 0);
            let fields: Vec<(u32, u32)> = (1..40)
                .map(|i| ((i * 7919) & ((1 << (i % 17 + 1)) - 1), i % 17 + 1))
                .collect();
            for &(v, n) in &fields {
                w.put(v, n);
            }
            let (bytes, bits) = w.finish();
            assert_eq!(bits, fields.iter().map(|f| f.1 as u64).sum::<u64>());
            let mut r = SliceBits::new(&bytes, phase as usize);
            for &(v, n) in &fields {
                assert_eq!(r.bits(n), Some(v));
            }
        }
    }

    #[test]
    fn reverse_bits() {
        assert_eq!(reverse(0b110, 3), 0b011);
        assert_eq!(reverse(1, 1), 1);
        assert_eq!(reverse(0b100_0000_0000_0000, 15), 1);
    }
}
