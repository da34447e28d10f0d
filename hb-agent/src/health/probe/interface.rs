//! `interface` checks, by event: an interface's carrier (administratively
//! up and lower layer up) from the kernel's link notifications.
//!
//! The interface is followed by name: its ifindex is looked up at each
//! notification (the name's ifindex in this thread's network namespace, by
//! `if_nametoindex`), so a deleted and recreated interface is followed.
//! hb asks the kernel (netlink, SIOCGIFINDEX), not /sys/class/net: sysfs
//! shows the interfaces of the namespace it was mounted in, which need
//! not be the agent's.

use std::ffi::CString;
use std::time::Duration;

use anyhow::{Context as _, Result};
use futures::TryStreamExt as _;
use rtnetlink::packet_route::link::LinkFlags;
use tokio::sync::mpsc;

use super::Outcome;
use crate::resources::error::netlink_errno;

/// Longest a look at the interface (one netlink request) may take.
const LOOK_TIMEOUT: Duration = Duration::from_secs(1);

pub struct CarrierWatch {
    iface: String,
    events: mpsc::UnboundedReceiver<(u32, bool)>,
    handle: rtnetlink::Handle,
    /// The interface's ifindex as last seen (None: missing).
    index: Option<u32>,
    /// What the last call said; None before the first.
    reported: Option<bool>,
    /// A look is due (the first, or one a cancelled call did not finish).
    relook: bool,
}

impl CarrierWatch {
    /// Subscribes to link notifications (before the first look, so no
    /// change falls in between). Needs a tokio runtime (it spawns the
    /// netlink connections).
    pub fn new(iface: &str) -> Result<CarrierWatch> {
        let events = crate::carrier::subscribe()?;
        let (conn, handle, _) = rtnetlink::new_connection().context("opening rtnetlink")?;
        tokio::spawn(conn);
        Ok(CarrierWatch {
            iface: iface.to_string(),
            events,
            handle,
            index: None,
            reported: None,
            relook: true,
        })
    }

    /// The carrier now (first call), then at its next change. Cancel-safe.
    pub async fn next(&mut self) -> Outcome {
        loop {
            let o = if self.relook {
                self.look().await
            } else {
                match self.events.recv().await {
                    Some((index, carrier)) => match self.on_event(index, carrier).await {
                        Some(o) => o,
                        None => continue, // another interface's news
                    },
                    None if self.reported == Some(false) => return std::future::pending().await,
                    None => Outcome::fail("link notifications stopped"),
                }
            };
            if self.reported != Some(o.ok) {
                self.reported = Some(o.ok);
                return o;
            }
        }
    }

    /// The interface's state after a notification, None when it is not ours.
    async fn on_event(&mut self, index: u32, carrier: bool) -> Option<Outcome> {
        let now = name_to_index(&self.iface);
        match now {
            None => {
                self.index = None;
                Some(self.missing())
            }
            Some(i) if i == index => {
                self.index = Some(i);
                Some(self.carrier(carrier))
            }
            // Ours appeared or was recreated under another ifindex.
            Some(i) if self.index != Some(i) => Some(self.look().await),
            Some(_) => None,
        }
    }

    /// Asks the kernel for the interface's flags.
    async fn look(&mut self) -> Outcome {
        // Still set if this call is dropped half-way: the next one looks.
        self.relook = true;
        let o = self.ask().await;
        self.relook = false;
        o
    }

    async fn ask(&mut self) -> Outcome {
        let mut answers = self
            .handle
            .link()
            .get()
            .match_name(self.iface.clone())
            .execute();
        match tokio::time::timeout(LOOK_TIMEOUT, answers.try_next()).await {
            Err(_) => Outcome::fail(format!("reading {}: timed out", self.iface)),
            Ok(Ok(Some(l))) => {
                self.index = Some(l.header.index);
                let f = l.header.flags;
                self.carrier(f.contains(LinkFlags::Up) && f.contains(LinkFlags::LowerUp))
            }
            Ok(Ok(None)) => self.missing(),
            Ok(Err(e)) if netlink_errno(&e) == Some(libc::ENODEV) => {
                self.index = None;
                self.missing()
            }
            Ok(Err(e)) => Outcome::fail(format!("reading {}: {e}", self.iface)),
        }
    }

    fn carrier(&self, up: bool) -> Outcome {
        if up {
            Outcome::pass(format!("{}: carrier up", self.iface))
        } else {
            Outcome::fail(format!("{}: carrier down", self.iface))
        }
    }

    fn missing(&self) -> Outcome {
        Outcome::fail(format!("no interface {}", self.iface))
    }
}

/// The ifindex of `name` in the calling thread's network namespace.
fn name_to_index(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    // SAFETY: a valid C string; if_nametoindex only reads it.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}

#[cfg(test)]
mod tests {
    use std::process::Command;
    use std::time::Instant;

    use hb_testkit::netns::Netns;

    use super::*;
    use crate::health::probe::in_netns;

    /// `ip -n NS ARGS` (set-up only inside the test's namespace).
    fn ip(ns: &str, args: &str) {
        let st = Command::new("ip")
            .args(["-n", ns])
            .args(args.split_whitespace())
            .status()
            .unwrap();
        assert!(st.success(), "ip -n {ns} {args}");
    }

    #[test]
    fn carrier_changes_are_events() {
        let ns = Netns::new("probeif").unwrap_or_else(|e| panic!("{e:#}"));
        let n = ns.name.clone();
        let lat = in_netns(&ns, move || async move {
            let mut none = CarrierWatch::new("nosuch0").unwrap();
            assert_eq!(none.next().await, Outcome::fail("no interface nosuch0"));

            ip(&n, "link add v0 type veth peer name v1");
            let mut w = CarrierWatch::new("v0").unwrap();
            assert_eq!(w.next().await, Outcome::fail("v0: carrier down"));
            ip(&n, "link set v0 up"); // no carrier yet: the peer is down
            let t0 = Instant::now();
            ip(&n, "link set v1 up");
            assert_eq!(w.next().await, Outcome::pass("v0: carrier up"));
            let lat = t0.elapsed();
            ip(&n, "link set v1 down");
            assert_eq!(w.next().await, Outcome::fail("v0: carrier down"));

            // Recreated: a new ifindex, followed by name.
            ip(&n, "link del v0");
            ip(&n, "link add v0 type veth peer name v1");
            ip(&n, "link set v1 up");
            ip(&n, "link set v0 up");
            assert_eq!(w.next().await, Outcome::pass("v0: carrier up"));
            // Deleted while up.
            ip(&n, "link del v0");
            assert_eq!(w.next().await, Outcome::fail("no interface v0"));
            // The other watch heard it all and had nothing to say.
            let quiet = tokio::time::timeout(Duration::from_millis(50), none.next()).await;
            assert!(quiet.is_err(), "{quiet:?}");
            lat
        });
        println!(
            "carrier up noticed {lat:?} after starting `ip link set v1 up` (includes running ip)"
        );
    }
}
