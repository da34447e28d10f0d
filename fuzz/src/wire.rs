//! `wire`: the heartbeat packet and its SipHash tag (hb-common's wire.rs,
//! siphash.rs), on arbitrary bytes.
//!
//! Input: 16 key bytes, one mode byte, then the UDP payload. With mode bit 0
//! the payload's first 120 bytes are signed first (so the fuzzer gets past
//! the tag, to the state checks); bit 1 flips one bit of a valid packet.
//!
//! Asserts: `decode` never panics and its errors come in the documented
//! order (Truncated, BadMagic, BadVersion, BadTag, BadState); an accepted
//! packet re-encodes to the same bytes, except the reserved bytes 5..8 that
//! `encode` writes as zero, and decodes again to the same heartbeat; the
//! byte-wise tag equals the word-wise one (the XDP program's), the kept
//! prefix state resumed at any word, and the `siphasher` crate's SipHash-2-4
//! on any message; a packet with one bit flipped is refused.
use core::hash::Hasher as _;

use hb_common::siphash::{SipWords, key_words, siphash24};
use hb_common::wire::{
    DecodeError, Heartbeat, MAGIC, MAX_CLAIMS, OFF_STATE, OFF_TAG, OFF_VERSION, PACKET_LEN,
    SIGNED_LEN, SIGNED_WORDS, VERSION, peek_ids, state_of, tag, tag_words, verify,
};

use crate::Bytes;

fn word(p: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(p[i * 8..i * 8 + 8].try_into().unwrap())
}

pub fn run(data: &[u8]) {
    let mut b = Bytes::new(data);
    let key: [u8; 16] = std::array::from_fn(|_| b.u8());
    let mode = b.u8();
    let (k0, k1) = key_words(&key);
    let mut payload = b.rest().to_vec();

    // SipHash on the raw payload: byte form against the reference crate.
    let mut h = siphasher::sip::SipHasher24::new_with_key(&key);
    h.write(&payload);
    assert_eq!(
        siphash24(k0, k1, &payload),
        h.finish(),
        "siphash24 vs siphasher"
    );

    if mode & 1 != 0 && payload.len() >= PACKET_LEN {
        let pkt: &[u8; PACKET_LEN] = payload.first_chunk().unwrap();
        let t = tag(k0, k1, pkt);
        payload[OFF_TAG..OFF_TAG + 8].copy_from_slice(&t.to_le_bytes());
    }
    let got = Heartbeat::decode(k0, k1, &payload);
    let Some(pkt) = payload.first_chunk::<PACKET_LEN>() else {
        assert_eq!(got, Err(DecodeError::Truncated));
        return;
    };

    // The word form (the XDP program's) and a kept prefix resumed anywhere.
    let t = tag(k0, k1, pkt);
    assert_eq!(tag_words(k0, k1, |i| word(pkt, i)), t, "tag_words vs tag");
    let split = usize::from(mode >> 4) % (SIGNED_WORDS + 1);
    let mut s = SipWords::new(k0, k1);
    for i in 0..split {
        s.word(word(pkt, i));
    }
    let mut resumed = s;
    for i in split..SIGNED_WORDS {
        resumed.word(word(pkt, i));
    }
    assert_eq!(resumed.finish(SIGNED_WORDS), t, "resumed at word {split}");
    assert_eq!(siphash24(k0, k1, &pkt[..SIGNED_LEN]), t);

    let (magic, version, ..) = peek_ids(pkt);
    let state = state_of(pkt);
    let expect = if magic != MAGIC {
        Err(DecodeError::BadMagic)
    } else if version != VERSION {
        Err(DecodeError::BadVersion)
    } else if !verify(k0, k1, pkt) {
        Err(DecodeError::BadTag)
    } else if usize::from(state.count) > MAX_CLAIMS {
        Err(DecodeError::BadState)
    } else {
        Ok(())
    };
    assert_eq!(got.map(|_| ()), expect, "decode's verdict");
    let Ok(hb) = got else { return };
    assert_eq!(hb.state, state);

    // Re-encoding gives the packet back, reserved bytes aside.
    let again = hb.encode(k0, k1);
    let mut want = *pkt;
    want[OFF_VERSION + 1..OFF_VERSION + 4].fill(0);
    assert_eq!(again[..SIGNED_LEN], want[..SIGNED_LEN], "re-encoded packet");
    assert_eq!(
        Heartbeat::decode(k0, k1, &again),
        Ok(hb),
        "decode(encode(hb))"
    );
    assert_eq!(again[OFF_STATE], state.count);

    if mode & 2 != 0 {
        let bit = usize::from(mode >> 2) * 31 % (PACKET_LEN * 8);
        let mut q = again;
        q[bit / 8] ^= 1 << (bit % 8);
        assert!(
            Heartbeat::decode(k0, k1, &q).is_err(),
            "bit {bit} flipped and still accepted"
        );
    }
}
