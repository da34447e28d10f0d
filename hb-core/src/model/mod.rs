//! The resource model: what a group is made of (`ResourceSpec`, one
//! struct per kind), what that says about its addresses and interfaces
//! (`GroupResources`), and how its addresses are announced
//! (`ArpSettings`). Plain data, no I/O: the configuration parsers build
//! it, the resources carry it out, and neither imports the other for it.

pub mod addr;
mod arp;
pub mod group;
pub mod quick;
pub mod resource;

pub use addr::{child_name, default_broadcast, fmt_mac, in_subnet};
pub use arp::ArpSettings;
pub use group::{GroupResources, NoQuickStep, QuickCandidate, ServiceAddress};
pub use resource::{HostnameSpec, IpSpec, MacMode, MacSpec, ResourceSpec, ScriptKind, ScriptSpec};
