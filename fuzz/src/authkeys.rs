//! `authkeys`: authkeys (any bytes, so also not UTF-8), read as part of an
//! ha.d directory, mode 600.
//!
//! Input: `authkeys [\0 ha.cf [\0 haresources]]`; a file left out is the
//! seed's node1 file. Asserts as `hacf` does (`config::accepted` also
//! checks that the key is authenticated exactly when the method is not crc).
use std::path::PathBuf;
use std::sync::OnceLock;

use crate::config::{SEED_HACF, SEED_HARESOURCES, load_dir, scratch, sections};

pub fn run(data: &[u8]) {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| scratch("authkeys"));
    let [auth, hacf, res] = sections(data);
    load_dir(
        dir,
        hacf.unwrap_or(SEED_HACF.as_bytes()),
        res.unwrap_or(SEED_HARESOURCES.as_bytes()),
        auth.unwrap_or_default(),
    );
}
