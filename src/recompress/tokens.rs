//! Deflate's symbols: a token is a literal byte or a (length, distance) match, packed in
//! a `u32`; the tables map lengths and distances to their codes and extra bits.

/// Marks a literal token; the byte is in the low 8 bits.
const LIT: u32 = 1 << 31;

pub fn literal(byte: u8) -> u32 {
    LIT | byte as u32
}

pub fn matched(len: u32, dist: u32) -> u32 {
    debug_assert!((3..=258).contains(&len) && (1..=32768).contains(&dist));
    len << 16 | (dist - 1)
}

#[inline]
pub fn is_literal(t: u32) -> bool {
    t & LIT != 0
}

/// Plaintext bytes the token stands for.
#[inline]
pub fn token_len(t: u32) -> usize {
    if is_literal(t) {
        1
    } else {
        (t >> 16) as usize
    }
}

#[inline]
pub fn distance(t: u32) -> usize {
    (t & 0xffff) as usize + 1
}

pub const LEN_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
pub const LEN_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
pub const DIST_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
pub const DIST_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];

/// The length code index (0..29) of every match length 3..=258.
pub static LEN_CODE: [u8; 259] = {
    let mut t = [0u8; 259];
    let mut code = 0;
    while code < 29 {
        let start = LEN_BASE[code] as usize;
        let end = if code == 28 {
            259
        } else {
            start + (1 << LEN_EXTRA[code])
        };
        let mut l = start;
        while l < end && l < 259 {
            t[l] = code as u8;
            l += 1;
        }
        code += 1;
    }
    // 258 has its own code (285), not 284 with extra bits 31.
    t[258] = 28;
    t
};

/// The distance code of `dist` (1..=32768).
#[inline]
pub fn dist_code(dist: usize) -> usize {
    let d = dist - 1;
    if d < 4 {
        d
    } else {
        let bits = usize::BITS - 1 - d.leading_zeros();
        (bits as usize) * 2 + ((d >> (bits - 1)) & 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_cover_their_ranges() {
        for dist in 1..=32768usize {
            let c = dist_code(dist);
            let base = DIST_BASE[c] as usize;
            assert!(
                dist >= base && dist < base + (1 << DIST_EXTRA[c]),
                "{dist} → {c}"
            );
        }
        for (len, &c) in LEN_CODE.iter().enumerate().skip(3) {
            let c = c as usize;
            let base = LEN_BASE[c] as usize;
            assert!(
                len >= base && (len - base) < (1usize << LEN_EXTRA[c]).max(1),
                "{len}"
            );
        }
        let t = matched(258, 32768);
        assert_eq!(
            (token_len(t), distance(t), is_literal(t)),
            (258, 32768, false)
        );
        assert!(is_literal(literal(7)) && token_len(literal(7)) == 1);
    }
}
