//! Ping nodes and ping groups, as Heartbeat's ipfail/pingd: ICMP echo to
//! each target every interval; a target counts as reachable while a reply
//! came within `deadping`. A ping group is one target, reachable if any of
//! its members is. The count goes to the cluster logic, which compares it
//! with what the peers report.
//!
//! A target on a directly connected subnet is lost at once when its
//! interface loses carrier (a pulled cable), without waiting a deadping.
//!
//! IPv4 only for now (a raw ICMP socket); IPv6 ping targets are rejected
//! by `check` with that reason.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::sync::watch;
use tracing::debug;

/// One thing to reach: a ping node (one address) or a ping group (any of).
#[derive(Clone, Debug)]
pub struct Target {
    pub name: String,
    pub addrs: Vec<Ipv4Addr>,
}

pub struct Pinger {
    targets: Vec<Target>,
    interval: Duration,
    deadping: Duration,
}

impl Pinger {
    pub fn new(targets: Vec<Target>, interval: Duration, deadping: Duration) -> Pinger {
        Pinger {
            targets,
            interval,
            deadping,
        }
    }

    /// Runs forever, publishing the reachable-target count on `tx` when it
    /// changes (see [`Reach`] for when the first count goes out).
    pub async fn run(self, tx: watch::Sender<Option<u8>>) -> Result<()> {
        if self.targets.is_empty() {
            return Ok(());
        }
        let sock = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))
            .context("opening a raw ICMP socket for ping nodes (needs CAP_NET_RAW)")?;
        sock.set_nonblocking(true)?;
        only_echo_replies(&sock)?;
        // SAFETY: the socket owns its fd for as long as the AsyncFd lives.
        let sock = unsafe { AsyncFd::register(sock)? };
        let ident = (std::process::id() & 0xffff) as u16;
        let addrs: Vec<Ipv4Addr> = self.targets.iter().flat_map(|t| t.addrs.clone()).collect();
        // One rtnetlink connection for the pinger's life: routes at start,
        // neighbour entries after a carrier returns.
        let nl = crate::resources::Netlink::connect().ok();
        let via = connected_via(nl.as_ref(), &addrs).await;
        let mut carrier = match crate::carrier::subscribe() {
            Ok(rx) => Some(rx),
            Err(e) => {
                tracing::warn!(
                    "ping nodes: no link notifications ({e:#}); a pulled cable is noticed after deadping"
                );
                None
            }
        };
        let mut reach = Reach::new(&self.targets, self.deadping, Instant::now());
        let mut seq: u16 = 0;
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut fast = tokio::time::interval(REPROBE_EVERY);
        fast.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // After a carrier came back: probing fast until every target lost
        // with it answers (or this passes). A count left at 0 until the
        // next interval would give groups away to a peer for nothing.
        let mut reprobe_until: Option<Instant> = None;
        let mut reprobes = 0u32;
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 1500];
        let send_all = |seq: u16| {
            for a in &addrs {
                let pkt = echo_request(ident, seq);
                let to: SocketAddr = SocketAddrV4::new(*a, 0).into();
                if let Err(e) = sock.get_ref().send_to(&pkt, &to.into()) {
                    debug!(target = %a, error = %e, "ping send failed");
                }
            }
        };
        loop {
            let reprobing = reprobe_until.is_some_and(|t| Instant::now() < t) && reach.any_cut();
            tokio::select! {
                _ = tick.tick() => {
                    seq = seq.wrapping_add(1);
                    send_all(seq);
                }
                _ = fast.tick(), if reprobing => {
                    seq = seq.wrapping_add(1);
                    send_all(seq);
                    reprobes += 1;
                    if reprobes.is_multiple_of(KICK_EVERY) {
                        kick_neighbours(nl.as_ref(), &addrs, &via, &reach.cut).await;
                    }
                }
                Some((index, up)) = async { carrier.as_mut()?.recv().await } => {
                    let mine = || via.iter().enumerate().filter(|(_, v)| **v == Some(index)).map(|(i, _)| i);
                    if !up {
                        for i in mine().collect::<Vec<_>>() {
                            if reach.carrier_lost(i) {
                                debug!(target = %addrs[i], ifindex = index, "ping target lost with its interface's carrier");
                            }
                        }
                    } else if mine().any(|i| reach.cut[i]) {
                        reprobe_until = Some(Instant::now() + REPROBE_FOR);
                        reprobes = 0;
                        kick_neighbours(nl.as_ref(), &addrs, &via, &reach.cut).await;
                        seq = seq.wrapping_add(1);
                        send_all(seq);
                    }
                }
                r = sock.readable() => {
                    let mut g = r?;
                    while let Ok((n, from)) = g.get_inner().recv_from(&mut buf) {
                        // SAFETY: recv_from initialised the first n bytes.
                        let data: &[u8] = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast(), n) };
                        if let (Some(id), Some(from)) = (echo_reply_id(data), from.as_socket_ipv4())
                            && id == ident
                            && let Some(i) = addrs.iter().position(|a| *a == *from.ip())
                        {
                            reach.reply(i, Instant::now());
                        }
                    }
                    g.clear_ready();
                }
            }
            if let Some(count) = reach.publish(Instant::now()) {
                let _ = tx.send(Some(count));
            }
        }
    }
}

/// After a carrier comes back, targets lost with it are probed this often
/// (an ARP resolution and a round trip on a LAN take well under this) ...
const REPROBE_EVERY: Duration = Duration::from_millis(5);
/// ... for this long at most; then the interval goes on as before.
const REPROBE_FOR: Duration = Duration::from_millis(200);
/// Every this many fast probes, the neighbour entries are kicked again.
const KICK_EVERY: u32 = 4;

/// The neighbour entries of the targets still cut (by index into `addrs`)
/// resolved afresh: a carrier loss flushes them, and an ARP request sent
/// while the other end's port was not yet forwarding is retried by the
/// kernel only a second later (`retrans_time`): seen in the lab, a node
/// back from a cable pull could not reach its ping node (or answer its
/// clients) for 1 s. Deleting an unresolved entry and asking for it again
/// (NTF_USE) sends a request at once.
async fn kick_neighbours(
    nl: Option<&crate::resources::Netlink>,
    addrs: &[Ipv4Addr],
    via: &[Option<u32>],
    cut: &[bool],
) {
    use crate::resources::netlink::NeighState;
    let Some(nl) = nl else {
        return;
    };
    for (i, a) in addrs.iter().enumerate() {
        let (Some(index), true) = (via[i], cut[i]) else {
            continue;
        };
        let ip = std::net::IpAddr::V4(*a);
        let Ok(Some(link)) = nl.link_by_index(index).await else {
            continue;
        };
        let entries = nl.neighbours(Some(index), ip).await.unwrap_or_default();
        // Only an entry still looking for the MAC (or none): one with a MAC
        // is confirmed by unicast probes.
        let waiting = entries
            .iter()
            .all(|n| matches!(n.state, NeighState::Incomplete | NeighState::Failed));
        if !waiting {
            continue;
        }
        for n in &entries {
            let _ = nl.del_neighbour(n).await;
        }
        if let Err(e) = nl.resolve_neighbour(&link, ip).await {
            debug!(target = %a, error = %e, "could not ask for the ping target's MAC");
        }
    }
}

/// What the pinger knows of its targets, and when the count may be told.
///
/// At start nothing is known: a count of 0 published before the targets had
/// a chance to answer would move groups for nothing. So the first count waits
/// until every target's state is known (it answered, or every address of it
/// was lost with its interface's carrier) or a `deadping` has passed. From
/// the first count on, every change is told at once: a loss inside the first
/// deadping counts as much as any other (a cable pulled seconds after start
/// with the tutorial's `deadping 60` was never told before).
#[derive(Debug)]
struct Reach {
    deadping: Duration,
    started: Instant,
    /// Each target's indexes into the flat address list.
    targets: Vec<Vec<usize>>,
    last_reply: Vec<Option<Instant>>,
    /// Answered at least once since start.
    answered: Vec<bool>,
    /// Lost with its carrier and not heard since.
    cut: Vec<bool>,
    told: Option<u8>,
}

impl Reach {
    fn new(targets: &[Target], deadping: Duration, now: Instant) -> Reach {
        let mut next = 0;
        let targets: Vec<Vec<usize>> = targets
            .iter()
            .map(|t| {
                let r = (next..next + t.addrs.len()).collect();
                next += t.addrs.len();
                r
            })
            .collect();
        Reach {
            deadping,
            started: now,
            targets,
            last_reply: vec![None; next],
            answered: vec![false; next],
            cut: vec![false; next],
            told: None,
        }
    }

    fn reply(&mut self, i: usize, now: Instant) {
        self.last_reply[i] = Some(now);
        self.answered[i] = true;
        self.cut[i] = false;
    }

    /// Address `i`'s interface lost its carrier; true if it was reachable.
    fn carrier_lost(&mut self, i: usize) -> bool {
        self.cut[i] = true;
        self.last_reply[i].take().is_some()
    }

    /// Some address was lost with its carrier and has not answered since.
    fn any_cut(&self) -> bool {
        self.cut.iter().any(|c| *c)
    }

    fn count(&self, now: Instant) -> u8 {
        let alive = |&i: &usize| self.last_reply[i].is_some_and(|t| now - t <= self.deadping);
        self.targets.iter().filter(|t| t.iter().any(alive)).count() as u8
    }

    fn known(&self) -> bool {
        self.targets
            .iter()
            .all(|t| t.iter().any(|&i| self.answered[i]) || t.iter().all(|&i| self.cut[i]))
    }

    /// The count to tell now, if it is to be told and changed.
    fn publish(&mut self, now: Instant) -> Option<u8> {
        let may = self.told.is_some() || now - self.started >= self.deadping || self.known();
        let count = self.count(now);
        if !may || self.told == Some(count) {
            return None;
        }
        self.told = Some(count);
        Some(count)
    }
}

/// A raw ICMP socket gets a copy of every ICMP message the host receives:
/// on a node serving a VIP that is every echo request its clients send
/// (10 000 a second under the failover benchmark's probe), each one a
/// wake-up of the agent's event loop. The kernel's per-type filter
/// (`ICMP_FILTER`, raw(7)) lets only echo replies through.
fn only_echo_replies(sock: &Socket) -> Result<()> {
    /// `ICMP_FILTER` (linux/icmp.h): a bit set = that type dropped.
    const ICMP_FILTER: libc::c_int = 1;
    const ECHO_REPLY: u32 = 0;
    let mask: u32 = !(1 << ECHO_REPLY);
    // SAFETY: setsockopt with a pointer to a u32 and its size.
    let rc = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(sock),
            libc::SOL_RAW,
            ICMP_FILTER,
            (&mask as *const u32).cast(),
            std::mem::size_of::<u32>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .context("filtering the ping socket to echo replies (ICMP_FILTER)");
    }
    Ok(())
}

/// The interface of the connected subnet each address is on, if any.
async fn connected_via(
    nl: Option<&crate::resources::Netlink>,
    addrs: &[Ipv4Addr],
) -> Vec<Option<u32>> {
    let Some(nl) = nl else {
        return vec![None; addrs.len()];
    };
    let ours = nl.addresses(None).await.unwrap_or_default();
    addrs
        .iter()
        .map(|a| {
            ours.iter()
                // A VIP without its own route (IFA_F_NOPREFIXROUTE) is not the way there.
                .filter(|o| o.addr.is_ipv4() && !o.addr.is_loopback() && o.flags & 0x200 == 0)
                .filter(|o| crate::resources::netlink::in_subnet((*a).into(), o.addr, o.prefix))
                .max_by_key(|o| o.prefix)
                .map(|o| o.index)
        })
        .collect()
}

fn echo_request(ident: u16, seq: u16) -> [u8; 16] {
    let mut p = [0u8; 16];
    p[0] = 8; // echo request
    p[4..6].copy_from_slice(&ident.to_be_bytes());
    p[6..8].copy_from_slice(&seq.to_be_bytes());
    p[8..16].copy_from_slice(b"hb-ping!");
    let c = checksum(&p);
    p[2..4].copy_from_slice(&c.to_be_bytes());
    p
}

/// The identifier of an ICMP echo reply in a raw IPv4 datagram.
fn echo_reply_id(d: &[u8]) -> Option<u16> {
    let ihl = (*d.first()? & 0x0f) as usize * 4;
    let icmp = d.get(ihl..)?;
    if *icmp.first()? != 0 || icmp.len() < 8 {
        return None;
    }
    Some(u16::from_be_bytes([icmp[4], icmp[5]]))
}

pub fn checksum(d: &[u8]) -> u16 {
    let mut sum: u32 = d
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32)
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed_target() -> Vec<Target> {
        vec![Target {
            name: "192.168.32.254".into(),
            addrs: vec![Ipv4Addr::new(192, 168, 32, 254)],
        }]
    }

    const MS: Duration = Duration::from_millis(1);

    /// The tutorial's cable pull: `deadping 60`, the gateway answered, then
    /// the service cable is pulled seconds after start. The loss is told at
    /// once, not after a minute (it was never told before the fix).
    #[test]
    fn a_loss_inside_the_first_deadping_is_told() {
        let t0 = Instant::now();
        let mut r = Reach::new(&seed_target(), Duration::from_secs(60), t0);
        assert_eq!(r.publish(t0 + MS), None, "nothing known yet");
        r.reply(0, t0 + 2 * MS);
        assert_eq!(r.publish(t0 + 2 * MS), Some(1), "every target answered");
        assert_eq!(r.publish(t0 + 3 * MS), None, "unchanged");
        assert!(r.carrier_lost(0));
        assert_eq!(
            r.publish(t0 + 3000 * MS),
            Some(0),
            "cable pulled 3 s after start"
        );
        r.reply(0, t0 + 4000 * MS);
        assert_eq!(r.publish(t0 + 4000 * MS), Some(1), "plugged back");
    }

    /// A target whose cable is already cut before it ever answered is known
    /// lost: the count is told without waiting for deadping.
    #[test]
    fn a_target_cut_before_answering_is_known() {
        let t0 = Instant::now();
        let mut r = Reach::new(&seed_target(), Duration::from_secs(60), t0);
        assert!(!r.carrier_lost(0));
        assert_eq!(r.publish(t0 + MS), Some(0));
    }

    /// Silence alone is told only after a deadping, then the count follows
    /// every change; a ping group is reachable while any member answers.
    #[test]
    fn silence_waits_for_deadping_and_groups_need_one_member() {
        let t0 = Instant::now();
        let targets = vec![
            seed_target().remove(0),
            Target {
                name: "group1".into(),
                addrs: vec![Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)],
            },
        ];
        let dp = 100 * MS;
        let mut r = Reach::new(&targets, dp, t0);
        r.reply(2, t0 + MS);
        assert_eq!(
            r.publish(t0 + MS),
            None,
            "the ping node has not answered yet"
        );
        assert_eq!(
            r.publish(t0 + dp),
            Some(1),
            "deadping passed: the group only"
        );
        r.reply(0, t0 + dp + MS);
        assert_eq!(r.publish(t0 + dp + MS), Some(2));
        assert_eq!(
            r.publish(t0 + dp + 2 * MS + dp),
            Some(0),
            "both silent a deadping"
        );
    }

    #[test]
    fn echo_request_checksums_to_zero() {
        let p = echo_request(0x1234, 7);
        assert_eq!(checksum(&p), 0);
    }

    #[test]
    fn reply_id_parsed_after_ip_header() {
        let mut d = vec![0x45u8; 20];
        d.extend_from_slice(&[0, 0, 0, 0, 0x12, 0x34, 0, 7]);
        assert_eq!(echo_reply_id(&d), Some(0x1234));
        d[20] = 8; // a request, not a reply
        assert_eq!(echo_reply_id(&d), None);
        assert_eq!(echo_reply_id(&d[..22]), None);
    }
}
