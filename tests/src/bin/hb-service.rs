//! `hb-service NAME [--port P] [--slow-ms N] [--pidfile F]`: the lab's real
//! service for health checks, a process of its own in a node's network
//! namespace (so it can be killed with SIGKILL, as a crash kills a real
//! service). It listens on 0.0.0.0:P (80) and answers every request with
//! `200 OK` and NAME as the body (HTTP/1.0, one request per connection).
//!
//! - SIGUSR1: slow mode on, every answer waits N ms (50) first (a service
//!   under load: an HTTP check with a shorter timeout starts to fail);
//!   SIGUSR2: slow mode off.
//! - SIGTERM / SIGINT: exits cleanly (status 0), removing its pidfile.
//! - `--pidfile F`: written with its pid once it listens (the lab waits
//!   for it: the service is ready when the file names it).
//!
//! Its process name (comm) is its executable's file name: the lab runs it
//! through a link per node (`hb-service-n0`, ...), since all the lab's
//! nodes share one PID namespace and a check by name must find only its
//! own node's service.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::signal::unix::{SignalKind, signal};

struct Opts {
    name: String,
    port: u16,
    slow: Duration,
    pidfile: Option<PathBuf>,
}

fn opts() -> Result<Opts> {
    let mut args = std::env::args().skip(1);
    let mut o = Opts {
        name: String::new(),
        port: 80,
        slow: Duration::from_millis(50),
        pidfile: None,
    };
    while let Some(a) = args.next() {
        let mut val = |what: &str| args.next().with_context(|| format!("{what} needs a value"));
        match a.as_str() {
            "--port" => o.port = val("--port")?.parse().context("--port")?,
            "--slow-ms" => {
                o.slow = Duration::from_millis(val("--slow-ms")?.parse().context("--slow-ms")?)
            }
            "--pidfile" => o.pidfile = Some(val("--pidfile")?.into()),
            "-h" | "--help" => {
                println!("usage: hb-service NAME [--port P] [--slow-ms N] [--pidfile F]");
                std::process::exit(0);
            }
            s if s.starts_with('-') => bail!("unknown option {s}"),
            s => o.name = s.to_string(),
        }
    }
    if o.name.is_empty() {
        bail!("usage: hb-service NAME [--port P] [--slow-ms N] [--pidfile F]");
    }
    Ok(o)
}

fn main() -> Result<()> {
    let o = opts()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(o))
}

async fn run(o: Opts) -> Result<()> {
    let addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, o.port));
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    // A restarted service binds at once, whatever its predecessor left.
    sock.set_reuse_address(true)?;
    sock.bind(&addr.into())
        .with_context(|| format!("binding {addr}"))?;
    sock.listen(1024)?;
    sock.set_nonblocking(true)?;
    let l = tokio::net::TcpListener::from_std(sock.into())?;
    if let Some(p) = &o.pidfile {
        let tmp = p.with_extension("tmp");
        std::fs::write(&tmp, format!("{}\n", std::process::id()))?;
        std::fs::rename(&tmp, p)?;
    }
    let slow = Arc::new(AtomicBool::new(false));
    let name: Arc<str> = o.name.into();
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let mut usr2 = signal(SignalKind::user_defined2())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    loop {
        tokio::select! {
            r = l.accept() => {
                let Ok((c, _)) = r else { continue };
                let (name, slow, delay) = (name.clone(), slow.clone(), o.slow);
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(
                        Duration::from_secs(5),
                        answer(c, &name, slow.load(Ordering::Relaxed).then_some(delay)),
                    )
                    .await;
                });
            }
            _ = usr1.recv() => slow.store(true, Ordering::Relaxed),
            _ = usr2.recv() => slow.store(false, Ordering::Relaxed),
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    if let Some(p) = &o.pidfile {
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}

/// Reads the request (its head fits one read here), waits `delay` if slow,
/// answers with `name` and closes.
async fn answer(mut c: tokio::net::TcpStream, name: &str, delay: Option<Duration>) -> Result<()> {
    let _ = c.set_nodelay(true);
    let mut req = [0u8; 1024];
    if c.read(&mut req).await? == 0 {
        return Ok(());
    }
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    let head = format!(
        "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{name}",
        name.len()
    );
    c.write_all(head.as_bytes()).await?;
    c.shutdown().await?;
    Ok(())
}
