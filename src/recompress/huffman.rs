//! Deflate's Huffman codes: tables for decoding, canonical codes for encoding, and the
//! dynamic block header that carries the code lengths (RFC 1951 §3.2.2, §3.2.7).

use super::bits::{reverse, BitSource};

/// Order in which code-length code lengths are sent.
const CLEN_ORDER: [usize; 19] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];

/// A lookup table indexed by the next `bits` input bits (LSB first). Entries hold
/// `symbol << 4 | length`; 0 marks a bit pattern no code starts with (an incomplete code,
/// as Go writes, decodes until such a pattern is met).
pub struct Decoder {
    table: Vec<u16>,
    pub bits: u32,
}

impl Decoder {
    pub fn new(lengths: &[u8]) -> Result<Decoder, &'static str> {
        let max = lengths.iter().copied().max().unwrap_or(0) as u32;
        let codes = canonical_codes(lengths)?;
        let bits = max.max(1);
        let mut table = vec![0u16; 1 << bits];
        for (sym, &len) in lengths.iter().enumerate() {
            if len == 0 {
                continue;
            }
            let entry = (sym as u16) << 4 | len as u16;
            let mut i = codes[sym] as usize;
            while i < table.len() {
                table[i] = entry;
                i += 1 << len;
            }
        }
        Ok(Decoder { table, bits })
    }

    /// Looks up the symbol the low bits of `peek` start with: (symbol, code length).
    #[inline]
    pub fn lookup(&self, peek: u64) -> Option<(u16, u32)> {
        let e = self.table[(peek as usize) & (self.table.len() - 1)];
        (e != 0).then_some((e >> 4, (e & 15) as u32))
    }
}

/// The bit-reversed canonical code of every symbol (ready for LSB-first output).
/// Refuses over-subscribed lengths; incomplete codes are allowed.
pub fn canonical_codes(lengths: &[u8]) -> Result<Vec<u32>, &'static str> {
    let mut count = [0u32; 16];
    for &l in lengths {
        if l > 15 {
            return Err("code length over 15");
        }
        count[l as usize] += 1;
    }
    count[0] = 0;
    let mut left: i64 = 1;
    for &c in &count[1..] {
        left = left * 2 - c as i64;
        if left < 0 {
            return Err("over-subscribed Huffman code");
        }
    }
    let mut next = [0u32; 16];
    let mut code = 0u32;
    for len in 1..16 {
        code = (code + count[len - 1]) << 1;
        next[len] = code;
    }
    Ok(lengths
        .iter()
        .map(|&l| {
            if l == 0 {
                return 0;
            }
            let c = next[l as usize];
            next[l as usize] += 1;
            reverse(c, l as u32)
        })
        .collect())
}

/// The literal/length and distance code lengths of a fixed-code block.
pub fn fixed_lengths() -> (Vec<u8>, Vec<u8>) {
    let mut lit = vec![8u8; 288];
    lit[144..256].fill(9);
    lit[256..280].fill(7);
    (lit, vec![5u8; 30])
}

/// Reads a dynamic block's header (after BFINAL and BTYPE): the literal/length and
/// distance code lengths.
pub fn read_dynamic_lengths(src: &mut dyn BitSource) -> Result<(Vec<u8>, Vec<u8>), &'static str> {
    const SHORT: &str = "the stream ends inside a block header";
    let hlit = src.bits(5).ok_or(SHORT)? as usize + 257;
    let hdist = src.bits(5).ok_or(SHORT)? as usize + 1;
    let hclen = src.bits(4).ok_or(SHORT)? as usize + 4;
    if hlit > 286 || hdist > 30 {
        return Err("too many length or distance codes");
    }
    let mut clen = [0u8; 19];
    for &i in &CLEN_ORDER[..hclen] {
        clen[i] = src.bits(3).ok_or(SHORT)? as u8;
    }
    let clen_dec = Decoder::new(&clen)?;
    let mut lengths = Vec::with_capacity(hlit + hdist);
    while lengths.len() < hlit + hdist {
        // Code-length codes are at most 7 bits; read bit by bit so a short input is exact.
        let mut code = 0u64;
        let mut n = 0;
        let sym = loop {
            code |= (src.bits(1).ok_or(SHORT)? as u64) << n;
            n += 1;
            match clen_dec.lookup(code) {
                Some((s, l)) if l == n => break s,
                _ if n >= clen_dec.bits => return Err("invalid code-length code"),
                _ => {}
            }
        };
        match sym {
            0..=15 => lengths.push(sym as u8),
            16 => {
                let prev = *lengths.last().ok_or("repeat with no previous length")?;
                let n = 3 + src.bits(2).ok_or(SHORT)? as usize;
                lengths.extend(std::iter::repeat_n(prev, n));
            }
            17 => {
                let n = 3 + src.bits(3).ok_or(SHORT)? as usize;
                lengths.extend(std::iter::repeat_n(0, n));
            }
            _ => {
                let n = 11 + src.bits(7).ok_or(SHORT)? as usize;
                lengths.extend(std::iter::repeat_n(0, n));
            }
        }
    }
    if lengths.len() != hlit + hdist {
        return Err("code lengths overrun the header's counts");
    }
    let dist = lengths.split_off(hlit);
    if lengths[256] == 0 {
        return Err("no end-of-block code");
    }
    Ok((lengths, dist))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_codes_match_rfc_example() {
        // RFC 1951 §3.2.2: lengths (3,3,3,3,3,2,4,4) give codes 010,011,100,101,110,00,1110,1111.
        let codes = canonical_codes(&[3, 3, 3, 3, 3, 2, 4, 4]).unwrap();
        let want = [0b010, 0b011, 0b100, 0b101, 0b110, 0b00, 0b1110, 0b1111];
        let lens = [3, 3, 3, 3, 3, 2, 4, 4];
        for i in 0..8 {
            assert_eq!(codes[i], reverse(want[i], lens[i]));
        }
        assert!(canonical_codes(&[1, 1, 1]).is_err());
    }
}
