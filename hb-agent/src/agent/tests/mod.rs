//! The agent core's rules with a recording executor and synthetic time:
//! no kernel, no sockets, no threads.
mod core;
