//! Carrier of the host's interfaces, from the kernel's link notifications
//! (RTMGRP_LINK): a pulled service cable is known the moment the driver
//! says so, instead of after a deadping of lost pings.

use anyhow::{Context as _, Result};
use futures::StreamExt as _;
use rtnetlink::packet_core::NetlinkPayload;
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::link::LinkFlags;
use rtnetlink::sys::{AsyncSocket as _, SocketAddr};
use tokio::sync::mpsc;

/// rtnetlink multicast group of link changes (linux/rtnetlink.h).
const RTMGRP_LINK: u32 = 1;

/// `(ifindex, carrier)` for every link change: carrier = administratively
/// up and lower layer up.
pub fn subscribe() -> Result<mpsc::UnboundedReceiver<(u32, bool)>> {
    let (mut conn, handle, mut messages) =
        rtnetlink::new_connection().context("opening rtnetlink for link notifications")?;
    conn.socket_mut()
        .socket_mut()
        .bind(&SocketAddr::new(0, RTMGRP_LINK))
        .context("subscribing to link notifications")?;
    tokio::spawn(conn);
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        // The connection runs while a handle lives.
        let _handle = handle;
        while let Some((m, _)) = messages.next().await {
            if let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)) = m.payload {
                let f = l.header.flags;
                let up = f.contains(LinkFlags::Up) && f.contains(LinkFlags::LowerUp);
                if tx.send((l.header.index, up)).is_err() {
                    return;
                }
            }
        }
    });
    Ok(rx)
}
