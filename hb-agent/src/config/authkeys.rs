//! Heartbeat's authkeys: `auth N`, then key lines `N crc|sha1 SECRET|md5 SECRET`.
//!
//! hb does not reproduce Heartbeat's HMACs; it derives its own 16-byte key
//! from the active secret (HKDF-SHA256, salt "hb heartbeat v1", info = the
//! method name), so the same authkeys on every node gives the same key.
//! The file must not be readable by group or others, or the agent refuses to
//! start, as Heartbeat did.
use std::collections::BTreeMap;
use std::fs::Metadata;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::diag::Diag;
use super::file;
use super::model::{Auth, AuthMethod};

pub(crate) const CRC_WARNING: &str = "heartbeats are NOT authenticated (authkeys uses crc)";

pub(crate) fn load(path: &Path, diags: &mut Vec<Diag>) -> Option<Auth> {
    let opened = match file::open(path) {
        Ok(opened) => opened,
        Err(diag) => {
            diags.push(diag);
            return None;
        }
    };
    // On the opened file, before its content is read.
    check_mode(&opened.meta, path, diags);
    match opened.read() {
        // The secret is hashed byte for byte: no lossy decoding here.
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => parse(&text, path, diags),
            Err(_) => {
                diags.push(Diag::error(
                    path,
                    "not valid UTF-8; write the secret in UTF-8",
                ));
                None
            }
        },
        Err(diag) => {
            diags.push(diag);
            None
        }
    }
}

fn check_mode(meta: &Metadata, path: &Path, diags: &mut Vec<Diag>) {
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        diags.push(Diag::error(
            path,
            format!("authkeys must be mode 600 (is {mode:o})"),
        ));
    }
}

struct KeyLine {
    method: AuthMethod,
    secret: String,
    line: usize,
}

pub(crate) fn parse(text: &str, file: &Path, diags: &mut Vec<Diag>) -> Option<Auth> {
    let mut active: Option<(u8, usize)> = None;
    let mut keys: BTreeMap<u8, KeyLine> = BTreeMap::new();
    // Key numbers whose line was wrong: not reported again as "not defined".
    let mut broken: Vec<u8> = Vec::new();
    let error =
        |line: usize, field: &str, msg: String| Diag::error(file, msg).at(line).field(field);
    let count_before = diags.iter().filter(|d| d.is_error()).count();

    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        // Only whole-line comments: a secret may contain '#'.
        let content = raw.trim();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let (mut first, mut rest) = split_word(content);
        // Heartbeat read this line with sscanf(buf, "auth %d"), where the
        // blank matches zero or more blanks: `auth1` selects key 1 too
        // (corpus cases 23 and 25 write it so).
        if let Some(n) = first
            .strip_prefix("auth")
            .filter(|n| key_number(n).is_some())
        {
            diags.push(
                Diag::warning(
                    file,
                    format!("`{first}` is read as `auth {n}`, as Heartbeat's sscanf(\"auth %d\") read it"),
                )
                .at(line)
                .field("auth"),
            );
            (first, rest) = ("auth", n);
        }
        if first == "auth" {
            let Some(n) = key_number(rest) else {
                diags.push(error(
                    line,
                    "auth",
                    format!("expected `auth N` with N 1-15, found {content:?}"),
                ));
                continue;
            };
            match active {
                Some((m, at)) if m == n => diags.push(
                    Diag::warning(file, format!("`auth {n}` repeated (also at line {at})"))
                        .at(line)
                        .field("auth"),
                ),
                Some((m, at)) => diags.push(error(
                    line,
                    "auth",
                    format!("`auth {n}` contradicts `auth {m}` at line {at}"),
                )),
                None => active = Some((n, line)),
            }
            continue;
        }
        let Some(n) = key_number(first) else {
            diags.push(error(
                line,
                "key",
                format!("expected `auth N` or `N METHOD [SECRET]`, found {content:?}"),
            ));
            continue;
        };
        let (method, secret) = split_word(rest);
        let method = match method {
            "crc" => AuthMethod::Crc,
            "sha1" => AuthMethod::Sha1,
            "md5" => AuthMethod::Md5,
            other => {
                diags.push(error(
                    line,
                    "key",
                    format!("expected method crc, sha1 or md5, found {other:?}"),
                ));
                broken.push(n);
                continue;
            }
        };
        match method {
            AuthMethod::Crc if !secret.is_empty() => diags.push(
                Diag::warning(
                    file,
                    "a crc key takes no secret; the text after `crc` is ignored",
                )
                .at(line)
                .field("key"),
            ),
            AuthMethod::Sha1 | AuthMethod::Md5 if secret.is_empty() => {
                diags.push(error(
                    line,
                    "key",
                    format!("key {n} ({method:?}) needs a secret"),
                ));
                broken.push(n);
                continue;
            }
            _ => {}
        }
        let secret = secret.to_string();
        if let Some(prev) = keys.get(&n) {
            if prev.method == method && prev.secret == secret {
                diags.push(
                    Diag::warning(
                        file,
                        format!("key {n} repeated (also at line {})", prev.line),
                    )
                    .at(line)
                    .field("key"),
                );
            } else {
                diags.push(error(
                    line,
                    "key",
                    format!(
                        "key {n} is already defined differently at line {}",
                        prev.line
                    ),
                ));
            }
            continue;
        }
        keys.insert(
            n,
            KeyLine {
                method,
                secret,
                line,
            },
        );
    }

    let Some((n, auth_line)) = active else {
        diags.push(Diag::error(file, "no `auth N` line selects a key").field("auth"));
        return None;
    };
    let Some(key) = keys.get(&n) else {
        if broken.contains(&n) {
            return None;
        }
        diags.push(error(
            auth_line,
            "auth",
            format!("`auth {n}` names key {n}, which is not defined"),
        ));
        return None;
    };
    // Heartbeat accepted packets signed with any listed key; hb uses one.
    for (other, k) in keys.iter().filter(|(m, _)| **m != n) {
        diags.push(
            Diag::warning(
                file,
                format!("key {other} is not used: hb accepts only the active key (auth {n})"),
            )
            .at(k.line)
            .field("key"),
        );
    }
    if diags.iter().filter(|d| d.is_error()).count() > count_before {
        return None;
    }
    Some(match key.method {
        AuthMethod::Crc => {
            diags.push(Diag::warning(file, CRC_WARNING).at(key.line).field("auth"));
            Auth::crc()
        }
        method => Auth::from_secret(method, key.secret.as_bytes()),
    })
}

fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim();
    match s.find(char::is_whitespace) {
        Some(end) => (&s[..end], s[end..].trim()),
        None => (s, ""),
    }
}

/// Heartbeat's key numbers: 1-15.
fn key_number(s: &str) -> Option<u8> {
    s.parse::<u8>().ok().filter(|n| (1..=15).contains(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::derive_key;

    fn run(text: &str) -> (Option<Auth>, Vec<Diag>) {
        let mut d = Vec::new();
        let a = parse(text, Path::new("authkeys"), &mut d);
        (a, d)
    }

    #[test]
    fn crc_is_unauthenticated_with_warning() {
        let (a, d) = run("auth 1\n1 crc\n#2 sha1 HI!\n");
        assert_eq!(a, Some(Auth::crc()));
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].to_string(), format!("authkeys:2: auth: {CRC_WARNING}"));
    }

    #[test]
    fn sha1_and_md5_derive_keys() {
        let (a, d) = run("auth 2\n2 sha1 HI!\n");
        assert!(d.is_empty(), "{d:?}");
        let a = a.unwrap();
        assert!(a.authenticated);
        assert_eq!(a.method, AuthMethod::Sha1);
        assert_eq!(a.key, derive_key(b"sha1", b"HI!"));
        let (b, _) = run("auth 3\n3 md5 Hello!\n");
        assert_eq!(b.unwrap().key, derive_key(b"md5", b"Hello!"));
    }

    #[test]
    fn secret_may_contain_hash_and_spaces() {
        let (a, _) = run("auth 2\n2 sha1 a#b c \n");
        assert_eq!(a.unwrap().key, derive_key(b"sha1", b"a#b c"));
    }

    #[test]
    fn seed_file_twice_repeated_is_fine() {
        // The tutorial's authkeys shows `auth 1` / `1 crc` twice.
        let (a, d) = run("auth 1\n1 crc\nauth 1\u{a0} \n1 crc\u{a0} \n");
        assert_eq!(a, Some(Auth::crc()));
        assert!(d.iter().all(|d| !d.is_error()), "{d:#?}");
        assert_eq!(d.len(), 3);
    }

    #[test]
    fn errors() {
        let (a, d) = run("auth 3\n1 crc\n");
        assert!(a.is_none());
        assert_eq!(
            d.last().unwrap().to_string(),
            "authkeys:1: auth: `auth 3` names key 3, which is not defined"
        );

        let (a, d) = run("auth 2\n2 sha1\n1 rot13 x\nauth 1\n");
        assert!(a.is_none());
        let lines: Vec<_> = d.iter().filter(|d| d.is_error()).map(|d| d.line).collect();
        assert_eq!(lines, [Some(2), Some(3), Some(4)], "{d:#?}");

        let (a, d) = run("# nothing\n");
        assert!(a.is_none());
        assert_eq!(
            d[0].to_string(),
            "authkeys: auth: no `auth N` line selects a key"
        );
    }

    #[test]
    fn auth_without_a_space_as_heartbeat_sscanf() {
        // Corpus cases 23 and 25.
        let (a, d) = run("auth1\n1 sha1 s3cret\n");
        assert_eq!(a.unwrap().key, derive_key(b"sha1", b"s3cret"));
        assert!(d.iter().all(|d| !d.is_error()), "{d:#?}");
        assert!(d[0].message.contains("read as `auth 1`"), "{d:#?}");
        // Not a key number: still refused.
        let (a, _) = run("auth16\n1 crc\n");
        assert!(a.is_none());
    }

    #[test]
    fn unused_keys_warned() {
        let (a, d) = run("auth 1\n1 sha1 x\n2 md5 y\n");
        assert!(a.is_some());
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].line, Some(3));
    }
}
