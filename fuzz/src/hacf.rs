//! `hacf`: ha.cf, read as part of an ha.d directory (`load_ha_dir_on`).
//!
//! Input: `ha.cf [\0 haresources [\0 authkeys]]`; a file left out is the
//! seed's node1 file. Asserts what `config::check_diags` and
//! `config::accepted` say: no panic, diagnostics point into the files read,
//! refused means an error, and an accepted configuration yields a valid
//! cluster spec for every node.
use std::path::PathBuf;
use std::sync::OnceLock;

use crate::config::{SEED_AUTHKEYS, SEED_HARESOURCES, load_dir, scratch, sections};

pub fn run(data: &[u8]) {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| scratch("hacf"));
    let [hacf, res, auth] = sections(data);
    load_dir(
        dir,
        hacf.unwrap_or_default(),
        res.unwrap_or(SEED_HARESOURCES.as_bytes()),
        auth.unwrap_or(SEED_AUTHKEYS.as_bytes()),
    );
}
