//! `cluster`: hb-core's cluster state machine, three nodes on the simulator
//! (`sim.rs`), driven by an arbitrary sequence of faults and events.
//!
//! Input: a configuration byte per cluster (group layout, auto_failback,
//! ping target, tie-break, fencing, links, operation delay, fault model),
//! then two bytes per operation: time passing, power off / boot, agent
//! kill -9 and restart, graceful shutdown, failing starts and stops, ping
//! reachability, operator standby / takeover (also for an unknown group),
//! spurious completions; in the partition model also cut links and hangs.
//!
//! Asserts, after every event on every node, the per-node rules of
//! `sim::Checker` (no action for an unknown group, a release always before
//! an acquire, one operation at a time, growing epochs, ...). Fault model
//! "crash" (power, restarts, failed or slow operations, and with fencing
//! also cuts and hangs, which fencing resolves): after every step at most
//! one powered node holds a group, so one holder per group and epoch.
//! Fault model "partition" (cuts and hangs without fencing: two holders
//! are then Heartbeat's documented behaviour): once everything is healed
//! the cluster converges within 20 deadtimes to at most one holder per
//! group. In both, once healed and asked to take over, every group ends
//! with exactly one holder.
use hb_core::cluster::{AdminCmd, Event};

use crate::Bytes;
use crate::sim::{DEAD, KA, NODES, Sim, UNKNOWN_GROUP, spec_for, three_node_groups};

const MAX_OPS: usize = 400;

pub fn run(data: &[u8]) {
    let mut b = Bytes::new(data);
    let layout = b.u8();
    let flags = b.u8();
    let more = b.u8();
    let groups = three_node_groups(layout);
    let specs = NODES.iter().map(|&n| spec_for(n, &groups, flags)).collect();
    let fencing = flags & 8 != 0;
    let links = 1 + u32::from(more & 1);
    let partition = more & 2 != 0 && !fencing;
    let mut s = Sim::new(specs, links);
    s.op_delay = u64::from((more >> 2) & 3) * KA;
    s.strict = !partition;
    s.shutdown_stops_fail = partition;
    let gids: Vec<u32> = groups.iter().map(|(g, _)| *g).collect();
    let group = |x: u8| -> Option<u32> {
        match usize::from(x) % (gids.len() + 2) {
            i if i < gids.len() => Some(gids[i]),
            i if i == gids.len() => Some(UNKNOWN_GROUP),
            _ => None,
        }
    };
    // Boot order and the first steps come from the input too.
    for n in NODES {
        if more & (0x10 << n) == 0 {
            s.boot(n);
        }
    }
    let mut ops = 0;
    while !b.is_empty() && ops < MAX_OPS {
        ops += 1;
        let op = b.u8();
        let arg = b.u8();
        let n = NODES[usize::from(arg) % 3];
        let other = NODES[(usize::from(arg) / 3) % 3];
        match op % 20 {
            0..=5 => s.run(1 + u64::from(arg % 8)),
            6 => s.power_off(n),
            7 => s.boot(n),
            8 => s.restart_agent(n),
            9 => s.deliver(n, Event::Shutdown),
            10 => s.start_agent(n),
            11 => {
                if let Some(g) = group(arg >> 2) {
                    let set = &mut s.nodes[n as usize].fail_acquire;
                    if !set.remove(&g) {
                        set.insert(g);
                    }
                }
            }
            12 => {
                if let Some(g) = group(arg >> 2) {
                    let set = &mut s.nodes[n as usize].fail_release;
                    if !set.remove(&g) {
                        set.insert(g);
                    }
                }
            }
            // A group's health checks failing or passing again (hb-core's
            // health, as the rules deliver it).
            13 if arg & 2 != 0 => {
                if let Some(g) = group(arg >> 3) {
                    s.deliver(n, Event::Health { group: g, healthy: arg & 4 != 0 });
                }
            }
            13 => s.nodes[n as usize].ping = (arg >> 2) % 2,
            14 | 15 => {
                let g = group(arg >> 2);
                let cmd = if op % 20 == 14 {
                    AdminCmd::Standby(g)
                } else {
                    AdminCmd::Takeover(g)
                };
                if partition && arg & 1 != 0 {
                    // At once, racing whatever the other nodes do in the
                    // same keepalive (see fuzz/regressions/README.md).
                    s.deliver(n, Event::Admin(cmd));
                } else {
                    s.nodes[n as usize].admin.push(cmd);
                }
            }
            16 => {
                // A completion nothing asked for (or for an unknown group):
                // warned about, never acted on.
                let g = group(arg >> 4).unwrap_or(UNKNOWN_GROUP);
                let ev = match (arg >> 2) & 3 {
                    0 => Event::Acquired { group: g },
                    1 => Event::AcquireFailed { group: g },
                    2 => Event::Released { group: g },
                    _ => Event::ReleaseFailed { group: g },
                };
                if s.nodes[n as usize]
                    .check
                    .completions()
                    .iter()
                    .all(|c| !same_group(c, g))
                {
                    s.deliver(n, ev);
                }
            }
            17 if partition || fencing => {
                let link = u32::from(arg >> 7) % s.links;
                if n != other {
                    s.cut(n, other, link);
                }
            }
            18 if partition || fencing => {
                if s.is_hung(n) {
                    s.resume(n);
                } else {
                    s.hang(n);
                }
            }
            19 => {
                if fencing {
                    s.fence_ok = !s.fence_ok;
                } else {
                    let link = u32::from(arg >> 7) % s.links;
                    s.heal(n, other, link);
                }
            }
            _ => s.run(1),
        }
    }
    s.run(DEAD / KA);

    // Healed: no cuts, nothing hung, every node up, operations succeed.
    s.heal_everything();
    s.run(20 * DEAD / KA);
    for g in s.groups() {
        let h = s.holders(g);
        assert!(
            h.len() <= 1,
            "not converged 20 deadtimes after healing: group {g} held by {h:?}\n{}",
            s.dump()
        );
    }
    s.strict = true;
    s.shutdown_stops_fail = false;
    // Fences still in flight when everything was healed may have powered
    // nodes off since (two of three gone at once: no quorum, by design).
    s.heal_everything();
    // Asked to take over everywhere (clears standby and start hold-offs):
    // every group gets exactly one holder.
    for n in NODES {
        s.nodes[n as usize].admin.push(AdminCmd::Takeover(None));
    }
    s.run(20 * DEAD / KA);
    for g in s.groups() {
        let h = s.holders(g);
        assert!(
            h.len() == 1,
            "healed, everyone asked to take over, 20 deadtimes later group {g} is held by {h:?}\n{}",
            s.dump()
        );
    }
}

fn same_group(ev: &Event, g: u32) -> bool {
    matches!(ev, Event::Acquired { group } | Event::Released { group } if *group == g)
}
