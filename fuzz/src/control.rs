//! `control`: the control socket's connection handler
//! (hb-agent's control/server.rs, `handle`), fed any byte stream.
//!
//! The client's bytes are the input; a fake agent answers every request
//! it is handed with the request's own text; the limit is 256 bytes.
//!
//! Asserts: the handler never panics; every reply is one line of JSON that
//! parses as a `Response`; each request line gets exactly one reply, in
//! order, until the first line over the limit, which gets an error and
//! ends the connection; a line is handed to the agent exactly when it is a
//! valid request (`serde_json` on the line, a trailing `\r` dropped), and
//! the agent sees it as sent.
use std::sync::OnceLock;
use std::time::Duration;

use hb_agent::control::server::{Limits, handle};
use hb_agent::control::{Request, Response};
use tokio::sync::mpsc;

const MAX: usize = 256;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime")
    })
}

pub fn run(data: &[u8]) {
    let limits = Limits {
        max_request: MAX,
        max_connections: 1,
        idle: Duration::from_secs(3600),
    };
    let (seen, out) = runtime().block_on(async {
        let (tx, mut rx) = mpsc::channel::<hb_agent::control::server::Incoming>(4);
        let agent = tokio::spawn(async move {
            let mut seen = Vec::new();
            while let Some((req, reply)) = rx.recv().await {
                let _ = reply.send(Response::ok(format!("{req:?}")));
                seen.push(req);
            }
            seen
        });
        let mut out = Vec::new();
        handle(data, &mut out, tx, limits).await;
        (agent.await.expect("agent task"), out)
    });

    // What the handler should have done, line by line.
    let mut want_seen = Vec::new();
    let mut want_replies = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let (line, next, complete) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..], true),
            None => (rest, &rest[rest.len()..], false),
        };
        if line.len() > MAX {
            want_replies.push(None);
            break;
        }
        let mut line = line;
        if complete && line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        match serde_json::from_slice::<Request>(line) {
            Ok(req) => {
                want_replies.push(Some(format!("{req:?}")));
                want_seen.push(req);
            }
            Err(_) => want_replies.push(Some(String::new())),
        }
        rest = next;
    }
    assert_eq!(seen, want_seen, "requests handed to the agent");

    assert_eq!(
        out.last().copied().unwrap_or(b'\n'),
        b'\n',
        "reply not ended"
    );
    let replies: Vec<&[u8]> = if out.is_empty() {
        Vec::new()
    } else {
        out[..out.len() - 1].split(|&b| b == b'\n').collect()
    };
    assert_eq!(
        replies.len(),
        want_replies.len(),
        "one reply per request: {:?}",
        String::from_utf8_lossy(&out)
    );
    for (got, want) in replies.iter().zip(&want_replies) {
        let r: Response = serde_json::from_slice(got).expect("a reply is a Response");
        match want {
            Some(m) if !m.is_empty() => assert!(r.ok && r.message == *m, "{r:?} for {m}"),
            Some(_) => assert!(!r.ok && r.message.starts_with("bad request"), "{r:?}"),
            None => assert!(!r.ok && r.message.contains("longer than"), "{r:?}"),
        }
    }
}
