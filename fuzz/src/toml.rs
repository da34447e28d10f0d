//! `toml`: the native TOML configuration (`load_toml_str`), on any text.
//!
//! Asserts what `config::check_diags` and `config::accepted` say (no panic,
//! diagnostics point into the file, refused means an error, an accepted
//! configuration yields a valid cluster spec for every node), and that
//! reading the same text twice gives the same verdict.
use std::path::{Path, PathBuf};

use hb_agent::config::load_toml_str;

use crate::config::{accepted, check_diags};

pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("fuzz.toml");
    let got = load_toml_str(text, path);
    let lines = text.split('\n').count();
    check_diags(&got, &[PathBuf::from(path)], &[lines]);
    if let Ok(cfg) = &got {
        accepted(cfg);
    }
    let again = load_toml_str(text, path);
    assert_eq!(
        got.as_ref().err(),
        again.as_ref().err(),
        "two reads, two verdicts"
    );
}
