//! The heartbeat packet: a fixed 152-byte layout carried as the UDP payload
//! (default port 694, as Heartbeat's).
//!
//! ```text
//! off size field
//!   0    4 magic          "HBT1" (0x31544248 little-endian)
//!   4    1 version        3
//!   5    1 flags          reserved, 0
//!   6    2 reserved       0
//!   8    4 cluster_id     which cluster this node belongs to
//!  12    4 node_id        sender
//!  16    8 incarnation    changes (grows) on every agent start
//!  24    4 keepalive_us   sender's keepalive
//!  28    4 deadtime_us    sender's deadtime
//!  32   96 state          count, held, eligible, ping_reachable, flags,
//!                         stuck, takeover, serving, then 8 x (group u32, epoch u32),
//!                         then round u32, reserved u32,
//!                         then 2 x ack (node u32, round u16, flags u16)
//! 128    8 seq            grows by one per heartbeat within an incarnation
//! 136    8 send_ts_ns     sender's CLOCK_MONOTONIC at send (informational)
//! 144    8 tag            SipHash-2-4 over bytes 0..144
//! ```
//! All integers are little-endian. The tag is a keyed MAC: the XDP program
//! verifies it with the same [`tag`] function the agent signs with.
//!
//! Version 2 puts what changes with every heartbeat (seq, send time) last:
//! the first 128 bytes stay the same from one heartbeat of a peer to the
//! next until its state changes, so the receiver keeps the SipHash state
//! after them and hashes 16 bytes (plus finalization) per heartbeat instead
//! of 144. Version 1 had seq and send time at 24..40. Version 3 added the
//! stall round and its acknowledgements to the state (hb-core's
//! cluster/resume.rs): 128 bytes became 152.

use crate::siphash::{siphash24, siphash24_words};

pub const MAGIC: u32 = u32::from_le_bytes(*b"HBT1");
pub const VERSION: u8 = 3;
pub const DEFAULT_PORT: u16 = 694;
pub const PACKET_LEN: usize = 152;
/// Bytes covered by the tag.
pub const SIGNED_LEN: usize = 144;
/// The same, in 8-byte words.
pub const SIGNED_WORDS: usize = SIGNED_LEN / 8;
const _: () = assert!(SIGNED_LEN.is_multiple_of(8));
pub const MAX_CLAIMS: usize = 8;

pub const OFF_MAGIC: usize = 0;
pub const OFF_VERSION: usize = 4;
pub const OFF_CLUSTER: usize = 8;
pub const OFF_NODE: usize = 12;
pub const OFF_INCARNATION: usize = 16;
pub const OFF_KEEPALIVE: usize = 24;
pub const OFF_DEADTIME: usize = 28;
pub const OFF_STATE: usize = 32;
pub const OFF_SEQ: usize = 128;
pub const OFF_SEND_TS: usize = 136;
pub const OFF_TAG: usize = SIGNED_LEN;
/// Bytes before the first field that changes with every heartbeat: what
/// a receiver can keep the tag's SipHash state after.
pub const STABLE_LEN: usize = OFF_SEQ;
const _: () = assert!(OFF_STATE + STATE_LEN == OFF_SEQ && OFF_SEND_TS + 8 == OFF_TAG);

/// One resource group the sender is configured for.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Claim {
    pub group: u32,
    pub epoch: u32,
}

pub const STATE_STANDBY: u8 = 1;
pub const STATE_SETTLING: u8 = 2;
/// Flap dampening holds the sender back from taking groups (it judges its
/// own flaps; peers go by this). Older senders never set it.
pub const STATE_DAMPED: u8 = 4;

/// How many peers' stall rounds one heartbeat acknowledges at once.
pub const MAX_ACKS: usize = 2;

/// An answer to a peer that resumed from a stall (its `round`): that we
/// heard it, and whether we had declared it dead since our previous answer.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ack {
    pub node: u32,
    pub round: u16,
    pub flags: u16,
}

/// The slot holds an answer.
pub const ACK_VALID: u16 = 1;
/// We declared the peer dead since our previous answer to it.
pub const ACK_DECLARED_DEAD: u16 = 2;

/// The sender's view for the cluster logic: the groups it is configured
/// for (`claims[..count]`), which of them it holds, would accept, failed to
/// stop, asks to take over, or serves with every resource started (bit i of
/// `held`/`eligible`/`stuck`/`takeover`/`serving` is `claims[i]`), and how
/// many ping targets it reaches; its stall round (non-zero while it waits
/// for its peers' word after a stall) and its answers to peers' rounds.
/// 8-aligned so that the XDP program can compare and copy it in words.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClusterState {
    pub count: u8,
    pub held: u8,
    pub eligible: u8,
    pub ping_reachable: u8,
    pub flags: u8,
    pub stuck: u8,
    pub takeover: u8,
    /// Bit i: claim i's resources are all started (not starting or stopping).
    pub serving: u8,
    pub claims: [Claim; MAX_CLAIMS],
    pub round: u32,
    pub reserved: u32,
    pub acks: [Ack; MAX_ACKS],
}
pub const STATE_LEN: usize = 96;
const _: () = assert!(core::mem::size_of::<ClusterState>() == STATE_LEN);
const _: () = assert!(core::mem::align_of::<ClusterState>() == 8);
const _: () = assert!(OFF_STATE.is_multiple_of(8) && STATE_LEN.is_multiple_of(8));

/// A decoded heartbeat.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Heartbeat {
    pub cluster_id: u32,
    pub node_id: u32,
    pub incarnation: u64,
    pub seq: u64,
    pub send_ts_ns: u64,
    pub keepalive_us: u32,
    pub deadtime_us: u32,
    pub state: ClusterState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer than [`PACKET_LEN`] bytes.
    Truncated,
    BadMagic,
    BadVersion,
    BadTag,
    /// `state.count` larger than [`MAX_CLAIMS`].
    BadState,
}

#[inline(always)]
fn rd16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}

#[inline(always)]
fn rd32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

#[inline(always)]
fn rd64(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes([
        b[o],
        b[o + 1],
        b[o + 2],
        b[o + 3],
        b[o + 4],
        b[o + 5],
        b[o + 6],
        b[o + 7],
    ])
}

/// The tag over the first [`SIGNED_LEN`] bytes of a packet.
#[inline(always)]
pub fn tag(k0: u64, k1: u64, pkt: &[u8; PACKET_LEN]) -> u64 {
    match pkt.first_chunk::<SIGNED_LEN>() {
        Some(signed) => siphash24(k0, k1, signed),
        // Cannot happen (checked at compile time below); no panic path in BPF.
        None => 0,
    }
}
const _: () = assert!(PACKET_LEN >= SIGNED_LEN + 8);

/// [`tag`] of a packet given as its little-endian words (`word(i)` is bytes
/// `8i..8i + 8`): what the XDP program computes, reading the words in place.
#[inline(always)]
pub fn tag_words(k0: u64, k1: u64, word: impl Fn(usize) -> u64) -> u64 {
    siphash24_words::<SIGNED_WORDS>(k0, k1, word)
}

/// Whether the packet's tag is right under the key.
#[inline(always)]
pub fn verify(k0: u64, k1: u64, pkt: &[u8; PACKET_LEN]) -> bool {
    tag(k0, k1, pkt) == rd64(pkt, OFF_TAG)
}

/// Header fields the kernel needs before it verifies the tag.
#[inline(always)]
pub fn peek_ids(pkt: &[u8; PACKET_LEN]) -> (u32, u8, u32, u32, u64, u64) {
    (
        rd32(pkt, OFF_MAGIC),
        pkt[OFF_VERSION],
        rd32(pkt, OFF_CLUSTER),
        rd32(pkt, OFF_NODE),
        rd64(pkt, OFF_INCARNATION),
        rd64(pkt, OFF_SEQ),
    )
}

/// The state bytes of a packet, as a struct.
#[inline(always)]
pub fn state_of(pkt: &[u8; PACKET_LEN]) -> ClusterState {
    let mut s = ClusterState {
        count: pkt[OFF_STATE],
        held: pkt[OFF_STATE + 1],
        eligible: pkt[OFF_STATE + 2],
        ping_reachable: pkt[OFF_STATE + 3],
        flags: pkt[OFF_STATE + 4],
        stuck: pkt[OFF_STATE + 5],
        takeover: pkt[OFF_STATE + 6],
        serving: pkt[OFF_STATE + 7],
        claims: [Claim::default(); MAX_CLAIMS],
        round: rd32(pkt, OFF_ROUND),
        reserved: rd32(pkt, OFF_ROUND + 4),
        acks: [Ack::default(); MAX_ACKS],
    };
    let mut i = 0;
    while i < MAX_CLAIMS {
        let o = OFF_STATE + 8 + i * 8;
        s.claims[i] = Claim {
            group: rd32(pkt, o),
            epoch: rd32(pkt, o + 4),
        };
        i += 1;
    }
    let mut i = 0;
    while i < MAX_ACKS {
        let o = OFF_ACKS + i * 8;
        s.acks[i] = Ack {
            node: rd32(pkt, o),
            round: rd16(pkt, o + 4),
            flags: rd16(pkt, o + 6),
        };
        i += 1;
    }
    s
}

/// Where the state's round and acks lie in the packet.
const OFF_ROUND: usize = OFF_STATE + 8 + MAX_CLAIMS * 8;
const OFF_ACKS: usize = OFF_ROUND + 8;
const _: () = assert!(OFF_ACKS + MAX_ACKS * 8 == OFF_SEQ);

impl Heartbeat {
    /// Encodes and signs.
    pub fn encode(&self, k0: u64, k1: u64) -> [u8; PACKET_LEN] {
        let mut p = [0u8; PACKET_LEN];
        p[OFF_MAGIC..OFF_MAGIC + 4].copy_from_slice(&MAGIC.to_le_bytes());
        p[OFF_VERSION] = VERSION;
        p[OFF_CLUSTER..OFF_CLUSTER + 4].copy_from_slice(&self.cluster_id.to_le_bytes());
        p[OFF_NODE..OFF_NODE + 4].copy_from_slice(&self.node_id.to_le_bytes());
        p[OFF_INCARNATION..OFF_INCARNATION + 8].copy_from_slice(&self.incarnation.to_le_bytes());
        p[OFF_SEQ..OFF_SEQ + 8].copy_from_slice(&self.seq.to_le_bytes());
        p[OFF_SEND_TS..OFF_SEND_TS + 8].copy_from_slice(&self.send_ts_ns.to_le_bytes());
        p[OFF_KEEPALIVE..OFF_KEEPALIVE + 4].copy_from_slice(&self.keepalive_us.to_le_bytes());
        p[OFF_DEADTIME..OFF_DEADTIME + 4].copy_from_slice(&self.deadtime_us.to_le_bytes());
        let s = &self.state;
        p[OFF_STATE] = s.count;
        p[OFF_STATE + 1] = s.held;
        p[OFF_STATE + 2] = s.eligible;
        p[OFF_STATE + 3] = s.ping_reachable;
        p[OFF_STATE + 4] = s.flags;
        p[OFF_STATE + 5] = s.stuck;
        p[OFF_STATE + 6] = s.takeover;
        p[OFF_STATE + 7] = s.serving;
        for (i, c) in s.claims.iter().enumerate() {
            let o = OFF_STATE + 8 + i * 8;
            p[o..o + 4].copy_from_slice(&c.group.to_le_bytes());
            p[o + 4..o + 8].copy_from_slice(&c.epoch.to_le_bytes());
        }
        p[OFF_ROUND..OFF_ROUND + 4].copy_from_slice(&s.round.to_le_bytes());
        p[OFF_ROUND + 4..OFF_ROUND + 8].copy_from_slice(&s.reserved.to_le_bytes());
        for (i, a) in s.acks.iter().enumerate() {
            let o = OFF_ACKS + i * 8;
            p[o..o + 4].copy_from_slice(&a.node.to_le_bytes());
            p[o + 4..o + 6].copy_from_slice(&a.round.to_le_bytes());
            p[o + 6..o + 8].copy_from_slice(&a.flags.to_le_bytes());
        }
        let t = tag(k0, k1, &p);
        p[OFF_TAG..OFF_TAG + 8].copy_from_slice(&t.to_le_bytes());
        p
    }

    /// Decodes and verifies a UDP payload. Extra bytes after the packet are
    /// ignored (a later version may append fields).
    pub fn decode(k0: u64, k1: u64, payload: &[u8]) -> Result<Heartbeat, DecodeError> {
        let pkt: &[u8; PACKET_LEN] = payload.first_chunk().ok_or(DecodeError::Truncated)?;
        let (magic, version, cluster_id, node_id, incarnation, seq) = peek_ids(pkt);
        if magic != MAGIC {
            return Err(DecodeError::BadMagic);
        }
        if version != VERSION {
            return Err(DecodeError::BadVersion);
        }
        if !verify(k0, k1, pkt) {
            return Err(DecodeError::BadTag);
        }
        let state = state_of(pkt);
        if state.count as usize > MAX_CLAIMS {
            return Err(DecodeError::BadState);
        }
        Ok(Heartbeat {
            cluster_id,
            node_id,
            incarnation,
            seq,
            send_ts_ns: rd64(pkt, OFF_SEND_TS),
            keepalive_us: rd32(pkt, OFF_KEEPALIVE),
            deadtime_us: rd32(pkt, OFF_DEADTIME),
            state,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K0: u64 = 0x0706_0504_0302_0100;
    const K1: u64 = 0x0f0e_0d0c_0b0a_0908;

    fn sample() -> Heartbeat {
        let mut state = ClusterState {
            count: 2,
            held: 0b01,
            eligible: 0b11,
            ping_reachable: 1,
            flags: STATE_SETTLING,
            stuck: 0b10,
            takeover: 0b01,
            serving: 0b01,
            ..Default::default()
        };
        state.claims[0] = Claim {
            group: 0xdead_beef,
            epoch: 7,
        };
        state.claims[1] = Claim {
            group: 42,
            epoch: 1,
        };
        state.round = 3;
        state.acks[1] = Ack {
            node: 0x0102_0304,
            round: 9,
            flags: ACK_VALID | ACK_DECLARED_DEAD,
        };
        Heartbeat {
            cluster_id: 0x1234_5678,
            node_id: 0x9abc_def0,
            incarnation: 1_700_000_000_000_000_000,
            seq: 99,
            send_ts_ns: 123_456_789,
            keepalive_us: 1000,
            deadtime_us: 5000,
            state,
        }
    }

    #[test]
    fn round_trip() {
        let hb = sample();
        let p = hb.encode(K0, K1);
        assert_eq!(p.len(), PACKET_LEN);
        assert_eq!(&p[0..4], b"HBT1");
        assert_eq!(Heartbeat::decode(K0, K1, &p), Ok(hb));
    }

    #[test]
    fn layout_offsets_are_as_documented() {
        let p = sample().encode(K0, K1);
        assert_eq!(rd32(&p, OFF_NODE), 0x9abc_def0);
        assert_eq!(rd64(&p, OFF_SEQ), 99);
        assert_eq!(rd32(&p, OFF_DEADTIME), 5000);
        assert_eq!(p[OFF_STATE], 2);
        assert_eq!(rd32(&p, OFF_STATE + 8), 0xdead_beef);
        assert_eq!(rd32(&p, OFF_ROUND), 3);
        assert_eq!(rd32(&p, OFF_ACKS + 8), 0x0102_0304);
        assert_eq!(rd16(&p, OFF_ACKS + 12), 9);
        assert_eq!(rd64(&p, OFF_TAG), tag(K0, K1, &p));
    }

    #[test]
    fn word_form_of_the_tag_is_the_tag() {
        let p = sample().encode(K0, K1);
        assert_eq!(tag_words(K0, K1, |i| rd64(&p, i * 8)), rd64(&p, OFF_TAG));
        assert_eq!(
            tag_words(K0 ^ 1, K1, |i| rd64(&p, i * 8)),
            tag(K0 ^ 1, K1, &p)
        );
    }

    #[test]
    fn every_truncation_is_rejected() {
        let p = sample().encode(K0, K1);
        for n in 0..PACKET_LEN {
            assert_eq!(
                Heartbeat::decode(K0, K1, &p[..n]),
                Err(DecodeError::Truncated),
                "len {n}"
            );
        }
        let mut longer = [0u8; PACKET_LEN + 10];
        longer[..PACKET_LEN].copy_from_slice(&p);
        assert!(Heartbeat::decode(K0, K1, &longer).is_ok());
    }

    #[test]
    fn any_flipped_bit_is_rejected() {
        let p = sample().encode(K0, K1);
        for byte in 0..PACKET_LEN {
            for bit in 0..8 {
                let mut q = p;
                q[byte] ^= 1 << bit;
                assert!(
                    Heartbeat::decode(K0, K1, &q).is_err(),
                    "byte {byte} bit {bit}"
                );
            }
        }
    }

    #[test]
    fn wrong_key_is_rejected() {
        let p = sample().encode(K0, K1);
        assert_eq!(Heartbeat::decode(K0, K1 ^ 1, &p), Err(DecodeError::BadTag));
    }

    #[test]
    fn magic_and_version_are_checked_first() {
        let mut p = sample().encode(K0, K1);
        p[0] = b'X';
        assert_eq!(Heartbeat::decode(K0, K1, &p), Err(DecodeError::BadMagic));
        let mut p = sample().encode(K0, K1);
        p[OFF_VERSION] = 1;
        assert_eq!(Heartbeat::decode(K0, K1, &p), Err(DecodeError::BadVersion));
    }

    #[test]
    fn state_count_is_bounded() {
        let mut hb = sample();
        hb.state.count = MAX_CLAIMS as u8 + 1;
        let p = hb.encode(K0, K1);
        assert_eq!(Heartbeat::decode(K0, K1, &p), Err(DecodeError::BadState));
    }
}
