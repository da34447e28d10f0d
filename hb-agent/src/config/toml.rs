//! The native TOML configuration. Every Config field can be set; unknown keys
//! are errors (typos must not be ignored), durations need units, and the same
//! semantic rules as for an ha.d directory apply (see `validate`).
//!
//! Errors read `file:line: field: message`; `field` is the dotted key path
//! (`timing.keepalive`, `group.resource.mac`). A TOML syntax or type error
//! stops the parse (the toml crate reports one); semantic errors are all
//! collected.
mod build;
mod check;
mod resource;
mod schema;

use std::fs::Metadata;
use std::ops::Range;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use self::build::Build;
use self::schema::FileT;
use super::diag::{Diag, has_errors};
use super::file;
use super::model::Config;
use super::validate;

pub fn load_toml(path: &Path) -> Result<Config, Vec<Diag>> {
    let opened = file::open(path).map_err(|d| vec![d])?;
    let meta = opened.meta.clone();
    let bytes = opened.read().map_err(|d| vec![d])?;
    let text = String::from_utf8(bytes).map_err(|err| {
        let valid = &err.as_bytes()[..err.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
        vec![Diag::error(path, "not valid UTF-8").at(line)]
    })?;
    let mut config = load_toml_str(&text, path)?;
    secret_mode(&meta, path, &mut config);
    Ok(config)
}

pub fn load_toml_str(text: &str, path: &Path) -> Result<Config, Vec<Diag>> {
    let file: FileT = ::toml::from_str(text).map_err(|err| vec![syntax_error(&err, text, path)])?;
    let mut b = Build {
        file: path,
        lines: LineIndex::new(text),
        diags: Vec::new(),
    };
    let mut config = b.config(file);
    validate::sort(&mut b.diags, &[path.to_path_buf()]);
    if has_errors(&b.diags) {
        return Err(b.diags);
    }
    config.warnings = b.diags;
    config.source = vec![path.to_path_buf()];
    Ok(config)
}

/// `ha.d/checks.toml` (the health checks of a Heartbeat directory's
/// groups, which ha.cf and haresources have no words for) into `groups`.
/// Each `[[check]]` names its group as `status` does (a haresources
/// group is named after its first resource). The diagnostics, errors and
/// warnings, at their lines.
pub fn load_checks_str(text: &str, path: &Path, groups: &mut [super::model::Group]) -> Vec<Diag> {
    let file: schema::ChecksFileT = match ::toml::from_str(text) {
        Ok(f) => f,
        Err(err) => return vec![syntax_error(&err, text, path)],
    };
    let mut b = Build {
        file: path,
        lines: LineIndex::new(text),
        diags: Vec::new(),
    };
    let mut by_group: Vec<Vec<&::toml::Spanned<schema::CheckT>>> = vec![Vec::new(); groups.len()];
    for c in &file.check {
        let Some(named) = &c.get_ref().group else {
            b.error(
                &c.get_ref().kind,
                "check.group",
                "a check in checks.toml needs `group`: the group's name as `hb-agent status` shows it (a haresources line's first resource)",
            );
            continue;
        };
        match groups.iter().position(|g| g.answers_to(named.get_ref())) {
            Some(i) => by_group[i].push(c),
            None => {
                let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
                let msg = format!(
                    "no group `{}` in haresources (groups: {})",
                    named.get_ref(),
                    if names.is_empty() {
                        "none".into()
                    } else {
                        names.join(", ")
                    }
                );
                b.error(named, "check.group", msg);
            }
        }
    }
    for (g, checks) in groups.iter_mut().zip(by_group) {
        if !checks.is_empty() {
            g.checks = b.checks(&checks, &g.name.clone(), &g.resources.clone(), "check");
        }
    }
    b.diags
}

/// A file holding the cluster key should be private, as authkeys must be.
/// A warning rather than authkeys' error: the rule is hb's own here.
fn secret_mode(meta: &Metadata, path: &Path, config: &mut Config) {
    let mode = meta.permissions().mode() & 0o777;
    if config.auth.authenticated && mode & 0o077 != 0 {
        config.warnings.push(
            Diag::warning(
                path,
                format!("holds the cluster key but is readable by group/others (mode {mode:o}); chmod 600"),
            )
            .field("auth"),
        );
    }
}

// ---------------------------------------------------------------- errors

/// Byte offset -> 1-based line.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset)
    }

    fn column(&self, offset: usize, text: &str) -> usize {
        let start = self.starts[self.line(offset) - 1];
        text.get(start..offset).map_or(1, |s| s.chars().count() + 1)
    }
}

fn syntax_error(err: &::toml::de::Error, text: &str, path: &Path) -> Diag {
    let message = err.message().trim().to_string();
    let Some(span) = err.span() else {
        // serde's "missing field `auth`": name the field at least.
        let missing = message
            .strip_prefix("missing field `")
            .and_then(|m| m.split_once('`'))
            .map(|(name, _)| name.to_string());
        let diag = Diag::error(path, message.clone());
        return match missing {
            Some(name) => diag.field(name),
            None => diag,
        };
    };
    let lines = LineIndex::new(text);
    let offset = span.start.min(text.len());
    let mut diag = Diag::error(
        path,
        format!("{message} (column {})", lines.column(offset, text)),
    )
    .at(lines.line(offset));
    if let Some(field) = field_at(text, span) {
        diag = diag.field(field);
    }
    diag
}

/// The dotted key an error span belongs to: the key on that line (or the
/// span itself when it is a key or a table header), prefixed by the
/// enclosing `[table]`.
fn field_at(text: &str, span: Range<usize>) -> Option<String> {
    let start = span.start.min(text.len());
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let spanned = text[start..span.end.clamp(start, line_end)].trim();
    if let Some(header) = table_name(spanned) {
        return Some(header.to_string());
    }
    let before = &text[line_start..start];
    let key = match before.rfind('=') {
        Some(eq) => {
            let head = &before[..eq];
            let from = head.rfind(['{', ',']).map_or(0, |i| i + 1);
            head[from..].trim()
        }
        None => spanned,
    };
    let key = key.trim_matches(['"', '\'']);
    let bare = |k: &str| {
        !k.is_empty()
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    };
    if !bare(key) {
        return None;
    }
    let header = text[..line_start]
        .lines()
        .rev()
        .find_map(|l| table_name(l.trim()));
    Some(match header {
        Some(h) => format!("{h}.{key}"),
        None => key.to_string(),
    })
}

fn table_name(line: &str) -> Option<&str> {
    let inner = line.strip_prefix("[[").and_then(|l| l.split_once("]]"));
    let inner = inner.or_else(|| line.strip_prefix('[').and_then(|l| l.split_once(']')));
    inner.map(|(name, _)| name.trim())
}
