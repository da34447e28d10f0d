//! The kernel side as the agent sees it: load the XDP program, attach it,
//! fill its maps, read its counters and events.

pub mod events;
pub mod loader;
pub mod maps;

pub use events::{KernelEvent, KernelEventKind};
pub use loader::{Attachment, Kernel, OBJECT};
