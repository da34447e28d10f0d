//! The CLI's end of the control socket.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result};

use super::{Request, Response};

pub fn call(path: &Path, req: &Request) -> Result<Response> {
    let mut s = UnixStream::connect(path).with_context(|| {
        format!(
            "cannot reach the agent at {} (is `hb-agent run` running? another --socket?)",
            path.display()
        )
    })?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut line = serde_json::to_string(req)?;
    line.push('\n');
    s.write_all(line.as_bytes())?;
    let mut reply = String::new();
    BufReader::new(&s).read_line(&mut reply)?;
    serde_json::from_str(&reply).with_context(|| format!("bad reply from agent: {reply:?}"))
}
