//! `haresources`: haresources, read as part of an ha.d directory.
//!
//! Input: `haresources [\0 ha.cf [\0 authkeys]]`; a file left out is the
//! seed's node1 file. Asserts as `hacf` does.
use std::path::PathBuf;
use std::sync::OnceLock;

use crate::config::{SEED_AUTHKEYS, SEED_HACF, load_dir, scratch, sections};

pub fn run(data: &[u8]) {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| scratch("haresources"));
    let [res, hacf, auth] = sections(data);
    load_dir(
        dir,
        hacf.unwrap_or(SEED_HACF.as_bytes()),
        res.unwrap_or_default(),
        auth.unwrap_or(SEED_AUTHKEYS.as_bytes()),
    );
}
