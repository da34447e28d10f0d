//! The control socket: `hb-agent status|standby|takeover|watch` talk to the
//! running agent over a Unix socket, one JSON request and one JSON reply
//! per line.

pub mod client;
pub mod server;
pub mod status;

use serde::{Deserialize, Serialize};

pub use status::StatusReport;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "cmd", rename_all = "lowercase")]
pub enum Request {
    Status,
    /// As hb_standby: give groups (all, or one) to the other nodes.
    Standby {
        group: Option<String>,
    },
    /// As hb_takeover: take groups (all, or one) from the other nodes.
    Takeover {
        group: Option<String>,
    },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusReport>,
}

impl Response {
    pub fn ok(message: impl Into<String>) -> Response {
        Response {
            ok: true,
            message: message.into(),
            status: None,
        }
    }

    pub fn err(message: impl Into<String>) -> Response {
        Response {
            ok: false,
            message: message.into(),
            status: None,
        }
    }
}
