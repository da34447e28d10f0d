//! systemd readiness, status and watchdog notifications (`sd_notify(3)`),
//! written by hand: one datagram per message to the `AF_UNIX` socket named
//! by `$NOTIFY_SOCKET` (a path, or an abstract name if it starts with '@').
//!
//! Every function is a no-op when `$NOTIFY_SOCKET` is unset (not started by
//! systemd, or `Type=` is not `notify`): the environment is read once, and
//! afterwards a call is a load of a cached `None`. Failures to send are
//! logged at debug level and otherwise ignored, as `sd_notify` callers do.
//!
//! The socket is `SOCK_CLOEXEC` (std's default), so resource scripts do not
//! inherit it; they do inherit `$NOTIFY_SOCKET`, but with the default
//! `NotifyAccess=main` systemd ignores messages from anyone but the agent.

use std::io;
use std::os::linux::net::SocketAddrExt as _;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::OnceLock;
use std::time::Duration;

/// A send never blocks the caller (a tokio worker) for longer than this if
/// systemd stops draining its socket; the message is then dropped.
const SEND_TIMEOUT: Duration = Duration::from_millis(100);

/// `READY=1` with a status line: the agent is up (XDP program attached, first
/// state known). systemd then considers the unit started.
pub fn ready(status: &str) {
    notify(&ready_message(status));
}

/// `STATUS=...`: the one-line state `systemctl status hb-agent` shows.
pub fn status(s: &str) {
    notify(&status_message(s));
}

/// `STOPPING=1`: shutting down (on SIGTERM, before releasing groups).
pub fn stopping() {
    notify("STOPPING=1");
}

/// `WATCHDOG=1`: the main loop is alive. Send every [`watchdog_interval`].
pub fn watchdog_ping() {
    notify("WATCHDOG=1");
}

/// How often to call [`watchdog_ping`]: half of `$WATCHDOG_USEC` (the rate
/// `sd_watchdog_enabled(3)` advises), or `None` if systemd expects no pings
/// (no `WatchdogSec=`, or `$WATCHDOG_PID` names another process).
pub fn watchdog_interval() -> Option<Duration> {
    let usec = std::env::var("WATCHDOG_USEC").ok();
    let pid = std::env::var("WATCHDOG_PID").ok();
    parse_watchdog(usec.as_deref(), pid.as_deref(), std::process::id())
}

/// The pure part of [`watchdog_interval`].
fn parse_watchdog(usec: Option<&str>, pid: Option<&str>, mypid: u32) -> Option<Duration> {
    if let Some(pid) = pid {
        // Set but not ours (or not a number): the pings are someone else's.
        if pid.trim().parse::<u32>().ok()? != mypid {
            return None;
        }
    }
    let usec: u64 = usec?.trim().parse().ok()?;
    if usec == 0 {
        return None;
    }
    Some(Duration::from_micros(usec) / 2)
}

fn ready_message(status: &str) -> String {
    format!("READY=1\n{}", status_message(status))
}

/// `STATUS=` holds one line: a newline would start a new (bogus) assignment.
fn status_message(s: &str) -> String {
    format!("STATUS={}", s.replace(['\n', '\r'], " "))
}

/// An unbound datagram socket and the address of systemd's notify socket.
struct Notifier {
    sock: UnixDatagram,
    addr: SocketAddr,
}

impl Notifier {
    /// For a `$NOTIFY_SOCKET` value: an absolute path, or `@name` for the
    /// abstract namespace. Anything else (empty, relative, `vsock:`) is
    /// unsupported.
    fn new(path: &str) -> io::Result<Notifier> {
        let addr = if let Some(name) = path.strip_prefix('@') {
            SocketAddr::from_abstract_name(name.as_bytes())?
        } else if path.starts_with('/') {
            SocketAddr::from_pathname(path)?
        } else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unsupported NOTIFY_SOCKET {path:?}"),
            ));
        };
        let sock = UnixDatagram::unbound()?;
        sock.set_write_timeout(Some(SEND_TIMEOUT))?;
        Ok(Notifier { sock, addr })
    }

    fn send(&self, msg: &str) -> io::Result<()> {
        let n = self.sock.send_to_addr(msg.as_bytes(), &self.addr)?;
        if n != msg.len() {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "short send"));
        }
        Ok(())
    }
}

/// The process-wide notifier, from `$NOTIFY_SOCKET` read once.
fn notifier() -> Option<&'static Notifier> {
    static N: OnceLock<Option<Notifier>> = OnceLock::new();
    N.get_or_init(|| {
        let path = std::env::var("NOTIFY_SOCKET").ok()?;
        Notifier::new(&path)
            .map_err(|e| tracing::warn!("systemd notifications disabled: {e}"))
            .ok()
    })
    .as_ref()
}

fn notify(msg: &str) {
    if let Some(n) = notifier()
        && let Err(e) = n.send(msg)
    {
        tracing::debug!("sd_notify {msg:?}: {e}");
    }
}

/// Sends `msg` to the notify socket `path` (a `$NOTIFY_SOCKET` value).
#[cfg(test)]
fn send_to(path: &str, msg: &str) -> io::Result<()> {
    Notifier::new(path)?.send(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recv(sock: &UnixDatagram) -> String {
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 4096];
        let n = sock.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn sends_to_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        let p = path.to_str().unwrap();

        send_to(p, &ready_message("2 groups held")).unwrap();
        assert_eq!(recv(&server), "READY=1\nSTATUS=2 groups held");
        send_to(p, &status_message("node1 dead\ntaking vip1")).unwrap();
        assert_eq!(recv(&server), "STATUS=node1 dead taking vip1");
        send_to(p, "WATCHDOG=1").unwrap();
        assert_eq!(recv(&server), "WATCHDOG=1");
        send_to(p, "STOPPING=1").unwrap();
        assert_eq!(recv(&server), "STOPPING=1");
    }

    #[test]
    fn one_notifier_sends_many() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::new(path.to_str().unwrap()).unwrap();
        for _ in 0..3 {
            n.send("WATCHDOG=1").unwrap();
            assert_eq!(recv(&server), "WATCHDOG=1");
        }
    }

    #[test]
    fn sends_to_an_abstract_socket() {
        let name = format!("hb-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let server = UnixDatagram::bind_addr(&addr).unwrap();
        send_to(&format!("@{name}"), "READY=1").unwrap();
        assert_eq!(recv(&server), "READY=1");
    }

    #[test]
    fn unsupported_or_absent_sockets_fail() {
        assert!(send_to("", "READY=1").is_err());
        assert!(send_to("relative/path", "READY=1").is_err());
        assert!(send_to("vsock:2:1234", "READY=1").is_err());
        // Nobody listening: an error, never a panic or a hang.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nobody");
        assert!(send_to(p.to_str().unwrap(), "READY=1").is_err());
    }

    #[test]
    fn watchdog_interval_is_half_of_watchdog_usec() {
        let half = Some(Duration::from_millis(2500));
        assert_eq!(parse_watchdog(Some("5000000"), None, 42), half);
        assert_eq!(parse_watchdog(Some("5000000"), Some("42"), 42), half);
        assert_eq!(parse_watchdog(Some("5000000"), Some("43"), 42), None);
        assert_eq!(parse_watchdog(Some("5000000"), Some("x"), 42), None);
        assert_eq!(parse_watchdog(None, Some("42"), 42), None);
        assert_eq!(parse_watchdog(None, None, 42), None);
        assert_eq!(parse_watchdog(Some("0"), None, 42), None);
        assert_eq!(parse_watchdog(Some("five"), None, 42), None);
    }
}
