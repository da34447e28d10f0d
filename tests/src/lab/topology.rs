//! The seed's network in namespaces: node0..2 each with eth0 on the service
//! network and eth2 on the heartbeat network, a switch namespace holding one
//! bridge per network, and a client/gateway namespace (192.168.32.254, also
//! the ping node). Nothing is connected to the root namespace.

use anyhow::{Result, bail};

use crate::fault::Cable;
use crate::netns::Netns;

pub const GATEWAY: &str = "192.168.32.254";
pub const VIPS: [&str; 2] = ["192.168.32.21", "192.168.32.22"];
pub const VMACS: [&str; 2] = ["00:1E:68:1E:99:5E", "00:1E:68:1E:88:5E"];
pub const VHOSTS: [&str; 2] = ["nodevir", "nodevir2"];

/// The seed's three nodes.
pub struct NodeSpec {
    pub name: &'static str,
    pub svc_ip: &'static str,
    pub hb_ip: &'static str,
    pub mac: &'static str,
}

pub const NODES: [NodeSpec; 3] = [
    NodeSpec {
        name: "node0",
        svc_ip: "192.168.32.30",
        hb_ip: "10.160.100.30",
        mac: "00:18:8b:8e:04:e2",
    },
    NodeSpec {
        name: "node1",
        svc_ip: "192.168.32.31",
        hb_ip: "10.160.100.31",
        mac: "00:1e:68:1e:19:5e",
    },
    NodeSpec {
        name: "node2",
        svc_ip: "192.168.32.32",
        hb_ip: "10.160.100.32",
        mac: "00:1e:68:1e:16:7e",
    },
];

/// An extra host on one of the networks (`Topology::attach_attacker`),
/// indexed by network: 0 the service network, 1 the heartbeat network.
/// Locally administered MACs, addresses no node uses.
pub const ATTACKER_MACS: [&str; 2] = ["02:00:00:00:66:00", "02:00:00:00:66:02"];
pub const ATTACKER_IPS: [&str; 2] = ["192.168.32.200", "10.160.100.200"];

/// Index into `ATTACKER_MACS`/`ATTACKER_IPS` for a network.
pub fn attacker_index(net: Cable) -> usize {
    match net {
        Cable::Service => 0,
        Cable::Heartbeat => 1,
    }
}

pub struct Topology {
    pub sw: Netns,
    pub gw: Netns,
    pub nodes: Vec<Netns>,
}

/// The switch-side port name of node `i`'s interface (`svc` = eth0).
pub fn port(i: usize, svc: bool) -> String {
    format!("n{i}{}", if svc { "e0" } else { "e2" })
}

fn write_proc(ns: &Netns, path: &str, val: &str) -> Result<()> {
    ns.exec(&["sh", "-c", &format!("echo {val} > {path}")])?;
    Ok(())
}

impl Topology {
    pub fn build() -> Result<Topology> {
        let sw = Netns::new("sw")?;
        let gw = Netns::new("gw")?;
        for br in ["br0", "br2"] {
            sw.exec(&[
                "ip",
                "link",
                "add",
                br,
                "type",
                "bridge",
                "forward_delay",
                "0",
            ])?;
            sw.exec(&["ip", "link", "set", br, "up"])?;
        }
        // A switch does not run the host's firewall on the frames it
        // forwards; with br_netfilter loaded a Linux bridge does, in the
        // sender's context, and it was a fifth of every contender's
        // heartbeat cost (perf, 1 ms keepalive). Per namespace: this
        // switch's only (absent without br_netfilter: nothing to turn off).
        for t in ["iptables", "ip6tables", "arptables"] {
            let path = format!("/proc/sys/net/bridge/bridge-nf-call-{t}");
            let _ = sw.exec(&["sh", "-c", &format!("[ ! -e {path} ] || echo 0 > {path}")]);
        }
        let attach = |ns: &Netns, ifname: &str, swport: &str, br: &str| -> Result<()> {
            ns.exec(&[
                "ip", "link", "add", ifname, "type", "veth", "peer", "name", swport, "netns",
                &sw.name,
            ])?;
            sw.exec(&["ip", "link", "set", swport, "master", br, "up"])?;
            ns.exec(&["ip", "link", "set", ifname, "up"])?;
            Ok(())
        };
        attach(&gw, "eth0", "gwe0", "br0")?;
        gw.exec(&["ip", "addr", "add", &format!("{GATEWAY}/24"), "dev", "eth0"])?;
        let mut nodes = Vec::new();
        for (i, n) in NODES.iter().enumerate() {
            let ns = Netns::new(&format!("n{i}"))?;
            attach(&ns, "eth0", &port(i, true), "br0")?;
            attach(&ns, "eth2", &port(i, false), "br2")?;
            ns.exec(&["ip", "link", "set", "eth0", "address", n.mac])?;
            ns.exec(&[
                "ip",
                "addr",
                "add",
                &format!("{}/24", n.svc_ip),
                "dev",
                "eth0",
            ])?;
            // With its broadcast address, as ifupdown sets it: Heartbeat's
            // `bcast` sends to the interface's broadcast address.
            ns.exec(&[
                "ip",
                "addr",
                "add",
                &format!("{}/24", n.hb_ip),
                "brd",
                "+",
                "dev",
                "eth2",
            ])?;
            ns.exec(&["ip", "route", "add", "default", "via", GATEWAY])?;
            // Macvlan VIPs: only the interface that owns an address answers
            // ARP for it (otherwise eth0 would answer for the VIP with the
            // node's real MAC), as keepalived's use_vmac users also set.
            write_proc(&ns, "/proc/sys/net/ipv4/conf/all/arp_ignore", "1")?;
            write_proc(&ns, "/proc/sys/net/ipv4/conf/all/arp_announce", "2")?;
            nodes.push(ns);
        }
        Ok(Topology { sw, gw, nodes })
    }

    /// One more host plugged into the switch on `net` (the flood's
    /// attacker): a namespace of its own with `eth0` (`ATTACKER_MACS`,
    /// `ATTACKER_IPS`), its switch port `xa0`/`xa2` on br0/br2. Removed
    /// with the returned namespace (its veth goes with it); the nodes and
    /// the gateway are not touched.
    pub fn attach_attacker(&self, net: Cable) -> Result<Netns> {
        let k = attacker_index(net);
        let (br, swport) = match net {
            Cable::Service => ("br0", "xa0"),
            Cable::Heartbeat => ("br2", "xa2"),
        };
        let ns = Netns::new(if k == 0 { "xa0" } else { "xa2" })?;
        ns.exec(&[
            "ip",
            "link",
            "add",
            "eth0",
            "type",
            "veth",
            "peer",
            "name",
            swport,
            "netns",
            &self.sw.name,
        ])?;
        self.sw
            .exec(&["ip", "link", "set", swport, "master", br, "up"])?;
        ns.exec(&["ip", "link", "set", "eth0", "address", ATTACKER_MACS[k]])?;
        ns.exec(&[
            "ip",
            "addr",
            "add",
            &format!("{}/24", ATTACKER_IPS[k]),
            "dev",
            "eth0",
        ])?;
        ns.exec(&["ip", "link", "set", "eth0", "up"])?;
        Ok(ns)
    }

    /// Plugs or pulls node `i`'s cable on one network (the switch port).
    pub fn cable(&self, i: usize, svc: bool, up: bool) -> Result<()> {
        self.sw.exec(&[
            "ip",
            "link",
            "set",
            &port(i, svc),
            if up { "up" } else { "down" },
        ])?;
        Ok(())
    }

    /// Sets node `i`'s switch ports on both networks at once, in well under
    /// a millisecond (ioctl from a thread in the switch namespace; `cable`
    /// spawns `ip`, which takes milliseconds between the two cables). What
    /// a power cut looks like to the rest of the network.
    pub fn both_cables_fast(&self, i: usize, up: bool) -> Result<()> {
        let path = format!("/run/netns/{}", self.sw.name);
        let ports = [port(i, true), port(i, false)];
        std::thread::spawn(move || -> Result<()> {
            crate::netns::enter(&path)?;
            // SAFETY: a plain datagram socket for interface ioctls, closed below.
            let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0) };
            if fd < 0 {
                bail!("socket: {}", std::io::Error::last_os_error());
            }
            let r = ports.iter().try_for_each(|p| set_up(fd, p, up));
            // SAFETY: fd is ours.
            unsafe { libc::close(fd) };
            r
        })
        .join()
        .map_err(|_| anyhow::anyhow!("cable thread panicked"))?
    }
}

fn set_up(fd: i32, name: &str, up: bool) -> Result<()> {
    // SAFETY: ifreq is plain data; the name fits (checked), and the ioctls
    // read and write only that struct.
    unsafe {
        let mut req: libc::ifreq = std::mem::zeroed();
        if name.len() >= req.ifr_name.len() {
            bail!("interface name {name} too long");
        }
        for (d, s) in req.ifr_name.iter_mut().zip(name.bytes()) {
            *d = s as libc::c_char;
        }
        if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) < 0 {
            bail!("SIOCGIFFLAGS {name}: {}", std::io::Error::last_os_error());
        }
        let flags = req.ifr_ifru.ifru_flags;
        let up_flag = libc::IFF_UP as libc::c_short;
        req.ifr_ifru.ifru_flags = if up {
            flags | up_flag
        } else {
            flags & !up_flag
        };
        if libc::ioctl(fd, libc::SIOCSIFFLAGS, &mut req) < 0 {
            bail!("SIOCSIFFLAGS {name}: {}", std::io::Error::last_os_error());
        }
    }
    Ok(())
}
