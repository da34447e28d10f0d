//! The agent's end of the control socket.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use super::{Request, Response};

/// A request with the channel its reply goes back on.
pub type Incoming = (Request, oneshot::Sender<Response>);

/// Removes the socket file when the agent stops.
pub struct SocketGuard(PathBuf);

impl Drop for SocketGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Binds `path` (replacing a stale socket left by a killed agent, but not a
/// live one) and forwards requests to `tx`.
pub fn serve(path: &Path, tx: mpsc::Sender<Incoming>) -> Result<SocketGuard> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            anyhow::bail!(
                "another agent is already listening on {} (use --socket for a second one)",
                path.display()
            );
        }
        let _ = std::fs::remove_file(path);
    }
    let listener = UnixListener::bind(path)
        .with_context(|| format!("binding control socket {}", path.display()))?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let (r, w) = stream.into_split();
                handle(r, w, tx).await;
            });
        }
    });
    Ok(SocketGuard(path.to_path_buf()))
}

/// Serves one connection: reads requests, one per line, forwards each to
/// `tx` and writes its reply, until the client closes or goes away.
pub async fn handle<R, W>(r: R, mut w: W, tx: mpsc::Sender<Incoming>)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut lines = BufReader::new(r).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let resp = match serde_json::from_str::<Request>(&line) {
            Ok(req) => {
                let (otx, orx) = oneshot::channel();
                if tx.send((req, otx)).await.is_err() {
                    return;
                }
                orx.await
                    .unwrap_or_else(|_| Response::err("agent is stopping"))
            }
            Err(e) => {
                warn!(error = %e, "bad control request");
                Response::err(format!("bad request: {e}"))
            }
        };
        let mut out = serde_json::to_string(&resp).unwrap_or_default();
        out.push('\n');
        if w.write_all(out.as_bytes()).await.is_err() {
            debug!("control client went away");
            return;
        }
    }
}
