//! Fencing (STONITH): the configured command, `%n` replaced by the node
//! name, run with `sh -c` under a timeout. Success = exit status 0.

use std::time::Duration;

use tokio::process::Command;
use tracing::{error, info};

pub async fn fence(command: &str, node: &str, timeout: Duration) -> bool {
    let cmd = command.replace("%n", node);
    info!(node, command = %cmd, "fencing node");
    let child = Command::new("sh")
        .args(["-c", &cmd])
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(timeout, child).await {
        Ok(Ok(out)) if out.status.success() => {
            info!(node, "fencing confirmed");
            true
        }
        Ok(Ok(out)) => {
            error!(node, status = %out.status, stderr = %String::from_utf8_lossy(&out.stderr).trim(), "fencing failed");
            false
        }
        Ok(Err(e)) => {
            error!(node, error = %e, "fencing command could not run");
            false
        }
        Err(_) => {
            error!(
                node,
                timeout_s = timeout.as_secs_f64(),
                "fencing timed out; killed"
            );
            false
        }
    }
}
