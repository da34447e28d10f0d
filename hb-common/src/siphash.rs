//! SipHash-2-4 (Aumasson & Bernstein), 64-bit output, 128-bit key.
//!
//! Written by hand rather than taken from a crate because the same code must
//! pass the BPF verifier: no heap, no trait objects, no data-dependent loops
//! beyond the block count, and it inlines into a straight line when the
//! message length is a compile-time constant (the heartbeat case).

#[inline(always)]
fn round(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13);
    v[1] ^= v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16);
    v[3] ^= v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21);
    v[3] ^= v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17);
    v[1] ^= v[2];
    v[2] = v[2].rotate_left(32);
}

#[inline(always)]
fn compress(v: &mut [u64; 4], m: u64) {
    v[3] ^= m;
    round(v);
    round(v);
    v[0] ^= m;
}

#[inline(always)]
fn init(k0: u64, k1: u64) -> [u64; 4] {
    [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ]
}

#[inline(always)]
fn finish(mut v: [u64; 4]) -> u64 {
    v[2] ^= 0xff;
    round(&mut v);
    round(&mut v);
    round(&mut v);
    round(&mut v);
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

/// SipHash-2-4 of `data` under the key `(k0, k1)` (the 16 key bytes read as
/// two little-endian words).
#[inline(always)]
pub fn siphash24(k0: u64, k1: u64, data: &[u8]) -> u64 {
    let mut v = init(k0, k1);
    let len = data.len();
    let full = len / 8;
    let mut i = 0;
    while i < full {
        let o = i * 8;
        let m = u64::from_le_bytes([
            data[o],
            data[o + 1],
            data[o + 2],
            data[o + 3],
            data[o + 4],
            data[o + 5],
            data[o + 6],
            data[o + 7],
        ]);
        compress(&mut v, m);
        i += 1;
    }
    let mut last = (len as u64 & 0xff) << 56;
    let mut j = 0;
    while j < len % 8 {
        last |= (data[full * 8 + j] as u64) << (8 * j);
        j += 1;
    }
    compress(&mut v, last);
    finish(v)
}

/// SipHash-2-4 fed whole 8-byte words: the state after a prefix of a
/// message can be kept and resumed (the XDP program keeps the state after a
/// peer's constant first words). `new`, then [`SipWords::word`] for each
/// 8-byte block in order, then [`SipWords::finish`] with the message's word
/// count gives exactly [`siphash24`] of those bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SipWords {
    pub v: [u64; 4],
}

impl SipWords {
    #[inline(always)]
    pub fn new(k0: u64, k1: u64) -> SipWords {
        SipWords { v: init(k0, k1) }
    }

    /// Absorbs bytes `8i..8i + 8` of the message as a little-endian word.
    #[inline(always)]
    pub fn word(&mut self, m: u64) {
        compress(&mut self.v, m);
    }

    /// The hash of the `n_words * 8` bytes absorbed.
    #[inline(always)]
    pub fn finish(mut self, n_words: usize) -> u64 {
        compress(&mut self.v, ((n_words as u64 * 8) & 0xff) << 56);
        finish(self.v)
    }
}

/// SipHash-2-4, as [`siphash24`], of an `8 * N`-byte message given as its
/// `N` little-endian words: `word(i)` is bytes `8i..8i + 8`.
#[inline(always)]
pub fn siphash24_words<const N: usize>(k0: u64, k1: u64, word: impl Fn(usize) -> u64) -> u64 {
    let mut h = SipWords::new(k0, k1);
    let mut i = 0;
    while i < N {
        h.word(word(i));
        i += 1;
    }
    h.finish(N)
}

/// Splits a 16-byte key into the two words [`siphash24`] takes.
pub const fn key_words(key: &[u8; 16]) -> (u64, u64) {
    (
        u64::from_le_bytes([
            key[0], key[1], key[2], key[3], key[4], key[5], key[6], key[7],
        ]),
        u64::from_le_bytes([
            key[8], key[9], key[10], key[11], key[12], key[13], key[14], key[15],
        ]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::hash::Hasher;

    /// The first entries of `vectors_sip64` from the SipHash reference
    /// implementation: key 00..0f, message 00..(i-1), output little-endian.
    const VECTORS: [[u8; 8]; 8] = [
        [0x31, 0x0e, 0x0e, 0xdd, 0x47, 0xdb, 0x6f, 0x72],
        [0xfd, 0x67, 0xdc, 0x93, 0xc5, 0x39, 0xf8, 0x74],
        [0x5a, 0x4f, 0xa9, 0xd9, 0x09, 0x80, 0x6c, 0x0d],
        [0x2d, 0x7e, 0xfb, 0xd7, 0x96, 0x66, 0x67, 0x85],
        [0xb7, 0x87, 0x71, 0x27, 0xe0, 0x94, 0x27, 0xcf],
        [0x8d, 0xa6, 0x99, 0xcd, 0x64, 0x55, 0x76, 0x18],
        [0xce, 0xe3, 0xfe, 0x58, 0x6e, 0x46, 0xc9, 0xcb],
        [0x37, 0xd1, 0x01, 0x8b, 0xf5, 0x00, 0x02, 0xab],
    ];
    /// vectors_sip64[15] and [63] (the last one), to cover a full block plus
    /// tail and the longest message of the published set.
    const VECTOR_15: [u8; 8] = [0xe5, 0x45, 0xbe, 0x49, 0x61, 0xca, 0x29, 0xa1];
    const VECTOR_63: [u8; 8] = [0x72, 0x45, 0x06, 0xeb, 0x4c, 0x32, 0x8a, 0x95];

    fn reference_key() -> [u8; 16] {
        core::array::from_fn(|i| i as u8)
    }

    fn msg(n: usize) -> std::vec::Vec<u8> {
        (0..n as u8).collect()
    }

    #[test]
    fn matches_published_vectors() {
        let (k0, k1) = key_words(&reference_key());
        for (n, want) in VECTORS.iter().enumerate() {
            assert_eq!(
                siphash24(k0, k1, &msg(n)),
                u64::from_le_bytes(*want),
                "len {n}"
            );
        }
        assert_eq!(siphash24(k0, k1, &msg(15)), u64::from_le_bytes(VECTOR_15));
        assert_eq!(siphash24(k0, k1, &msg(63)), u64::from_le_bytes(VECTOR_63));
    }

    #[test]
    fn words_form_matches_the_byte_form() {
        let (k0, k1) = key_words(&reference_key());
        fn check<const N: usize>(k0: u64, k1: u64) {
            let data: std::vec::Vec<u8> = (0..N * 8).map(|i| (i * 13 + 5) as u8).collect();
            let word = |i: usize| u64::from_le_bytes(data[i * 8..i * 8 + 8].try_into().unwrap());
            assert_eq!(
                siphash24_words::<N>(k0, k1, word),
                siphash24(k0, k1, &data),
                "{N} words"
            );
        }
        check::<0>(k0, k1);
        check::<1>(k0, k1);
        check::<2>(k0, k1);
        check::<7>(k0, k1);
        check::<15>(k0, k1);
        check::<16>(k0, k1);
        check::<31>(k0, k1);
        check::<32>(k0, k1);
        check::<33>(k0, k1);
        // The published vector for a 64-byte message (8 words).
        let (k0, k1) = key_words(&reference_key());
        let m = msg(64);
        let word = |i: usize| u64::from_le_bytes(m[i * 8..i * 8 + 8].try_into().unwrap());
        let mut h = siphasher::sip::SipHasher24::new_with_key(&reference_key());
        core::hash::Hasher::write(&mut h, &m);
        assert_eq!(
            siphash24_words::<8>(k0, k1, word),
            core::hash::Hasher::finish(&h)
        );
    }

    #[test]
    fn a_kept_prefix_state_resumes_to_the_same_hash() {
        let (k0, k1) = key_words(&reference_key());
        let data: std::vec::Vec<u8> = (0..120).map(|i| (i * 31 + 7) as u8).collect();
        let word = |i: usize| u64::from_le_bytes(data[i * 8..i * 8 + 8].try_into().unwrap());
        for split in 0..=15 {
            let mut prefix = SipWords::new(k0, k1);
            for i in 0..split {
                prefix.word(word(i));
            }
            let kept = prefix; // Copy: what a cache would hold
            let mut h = kept;
            for i in split..15 {
                h.word(word(i));
            }
            assert_eq!(h.finish(15), siphash24(k0, k1, &data), "split at {split}");
        }
    }

    #[test]
    fn matches_siphasher_crate_for_all_lengths() {
        let key = reference_key();
        let (k0, k1) = key_words(&key);
        for n in 0..200 {
            let data: std::vec::Vec<u8> = (0..n).map(|i| (i * 7 + 3) as u8).collect();
            let mut h = siphasher::sip::SipHasher24::new_with_key(&key);
            h.write(&data);
            assert_eq!(siphash24(k0, k1, &data), h.finish(), "len {n}");
        }
    }
}
