//! Crafted frames for BPF_PROG_TEST_RUN: Ethernet (optionally 802.1Q),
//! IPv4 or IPv6, UDP, and a payload.

use std::net::{Ipv4Addr, Ipv6Addr};

#[derive(Clone, Copy, Debug)]
pub enum L3 {
    V4,
    V6,
}

#[derive(Clone, Debug)]
pub struct Frame {
    pub l3: L3,
    pub vlan: Option<u16>,
    pub dport: u16,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn udp(l3: L3, dport: u16, payload: &[u8]) -> Frame {
        Frame {
            l3,
            vlan: None,
            dport,
            payload: payload.to_vec(),
        }
    }

    pub fn vlan(mut self, id: u16) -> Frame {
        self.vlan = Some(id);
        self
    }

    /// The frame's bytes.
    pub fn build(&self) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&[0xff; 6]);
        f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
        if let Some(id) = self.vlan {
            f.extend_from_slice(&0x8100u16.to_be_bytes());
            f.extend_from_slice(&id.to_be_bytes());
        }
        let udp_len = 8 + self.payload.len();
        let mut udp = Vec::with_capacity(udp_len);
        udp.extend_from_slice(&40000u16.to_be_bytes());
        udp.extend_from_slice(&self.dport.to_be_bytes());
        udp.extend_from_slice(&(udp_len as u16).to_be_bytes());
        udp.extend_from_slice(&[0, 0]); // checksum optional in IPv4; XDP does not check it
        udp.extend_from_slice(&self.payload);
        match self.l3 {
            L3::V4 => {
                f.extend_from_slice(&0x0800u16.to_be_bytes());
                let total = 20 + udp_len;
                let mut ip = vec![0x45, 0];
                ip.extend_from_slice(&(total as u16).to_be_bytes());
                ip.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
                ip.extend_from_slice(&Ipv4Addr::new(10, 160, 100, 30).octets());
                ip.extend_from_slice(&Ipv4Addr::BROADCAST.octets());
                let c = ipv4_checksum(&ip);
                ip[10..12].copy_from_slice(&c.to_be_bytes());
                f.extend_from_slice(&ip);
            }
            L3::V6 => {
                f.extend_from_slice(&0x86ddu16.to_be_bytes());
                let mut ip = vec![0x60, 0, 0, 0];
                ip.extend_from_slice(&(udp_len as u16).to_be_bytes());
                ip.extend_from_slice(&[17, 64]);
                ip.extend_from_slice(&"fe80::1".parse::<Ipv6Addr>().unwrap().octets());
                ip.extend_from_slice(&"ff02::1".parse::<Ipv6Addr>().unwrap().octets());
                f.extend_from_slice(&ip);
            }
        }
        f.extend_from_slice(&udp);
        f
    }

    /// Offsets where each header ends, for truncation tests.
    pub fn header_boundaries(&self) -> Vec<usize> {
        let l2 = 14 + if self.vlan.is_some() { 4 } else { 0 };
        let l3 = l2
            + match self.l3 {
                L3::V4 => 20,
                L3::V6 => 40,
            };
        vec![0, 12, l2, l3, l3 + 8]
    }
}

fn ipv4_checksum(h: &[u8]) -> u16 {
    let mut sum: u32 = h
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]) as u32)
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A non-UDP frame (ARP request), the most common pass-through traffic.
pub fn arp_frame() -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01, 0x08, 0x06]);
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01, 192, 168, 32, 30]);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&[192, 168, 32, 254]);
    f.resize(60, 0);
    f
}

/// `frame` (built by [`Frame::build`] without VLAN) sent to `dst` instead.
pub fn to_addr(mut frame: Vec<u8>, dst: std::net::IpAddr) -> Vec<u8> {
    match dst {
        std::net::IpAddr::V4(a) => frame[30..34].copy_from_slice(&a.octets()),
        std::net::IpAddr::V6(a) => frame[38..54].copy_from_slice(&a.octets()),
    }
    frame
}

/// An ARP request for `target`.
pub fn arp_request_for(target: Ipv4Addr) -> Vec<u8> {
    let mut f = arp_frame();
    f[38..42].copy_from_slice(&target.octets());
    f
}

/// An IPv6 neighbour solicitation for `target` (to its solicited-node group).
pub fn neighbour_solicitation_for(target: Ipv6Addr) -> Vec<u8> {
    let mut f = vec![0x33, 0x33, 0xff, 0, 0, 0];
    f[3..6].copy_from_slice(&target.octets()[13..]);
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01, 0x86, 0xdd]);
    f.extend_from_slice(&[0x60, 0, 0, 0, 0, 24, 58, 255]);
    f.extend_from_slice(&"fe80::1".parse::<Ipv6Addr>().unwrap().octets());
    let mut group = "ff02::1:ff00:0".parse::<Ipv6Addr>().unwrap().octets();
    group[13..].copy_from_slice(&target.octets()[13..]);
    f.extend_from_slice(&group);
    f.extend_from_slice(&[135, 0, 0, 0, 0, 0, 0, 0]);
    f.extend_from_slice(&target.octets());
    f
}
