//! Line handling shared by the Heartbeat file parsers (ha.cf, haresources,
//! authkeys): reading, comments, word splitting.
use std::path::Path;

use super::diag::Diag;
use super::file;

/// Reads a configuration file as text (see `file`: regular files only,
/// bounded, a leading byte order mark dropped). Heartbeat files written on old
/// systems may carry GBK/Latin-1 comments; those bytes are replaced rather
/// than refused (directives are ASCII), with a warning.
pub(crate) fn read(path: &Path, diags: &mut Vec<Diag>) -> Option<String> {
    match file::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => Some(text),
            Err(err) => {
                diags.push(Diag::warning(
                    path,
                    "not valid UTF-8: undecodable bytes were replaced (only comments should contain them)",
                ));
                Some(String::from_utf8_lossy(err.as_bytes()).into_owned())
            }
        },
        Err(diag) => {
            diags.push(diag);
            None
        }
    }
}

/// Heartbeat drops everything from the first `#` on a line (config.c:
/// `strchr(bp, COMMENTCHAR)`), so trailing comments work everywhere.
pub(crate) fn strip_comment(line: &str) -> &str {
    line.split_once('#').map_or(line, |(before, _)| before)
}

/// Words separated by whitespace. Unicode whitespace counts: the seed files
/// were copied from a web page and are full of U+00A0 (see `warn_odd_spaces`).
pub(crate) fn words(s: &str) -> impl Iterator<Item = &str> {
    s.split_whitespace()
}

/// Heartbeat's option directives (node, bcast, ping, keepalive...) split their
/// values on DELIMS, which includes the comma: `node a,b` is two nodes.
pub(crate) fn option_words(s: &str) -> Vec<&str> {
    s.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .collect()
}

/// The text after the first word, trimmed: for whole-line directives.
pub(crate) fn after_first_word(s: &str) -> &str {
    let s = s.trim_start();
    let end = s.find(char::is_whitespace).unwrap_or(s.len());
    s[end..].trim()
}

/// At most `max` characters of `s`, with "..." when cut: keeps messages about
/// prose mistaken for a directive readable.
pub(crate) fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((cut, _)) => format!("{}...", &s[..cut]),
        None => s.to_string(),
    }
}

/// One warning per file when non-ASCII spaces (U+00A0 and friends) appear
/// outside comments: hb treats them as blanks, Heartbeat did not (it would
/// have read `node\u{a0}node0` as one word), so the operator should know.
pub(crate) fn warn_odd_spaces(text: &str, file: &Path, diags: &mut Vec<Diag>) {
    let odd = |c: char| c.is_whitespace() && !c.is_ascii();
    let first = text
        .lines()
        .enumerate()
        .find(|(_, line)| strip_comment(line).contains(odd));
    if let Some((index, line)) = first {
        let c = strip_comment(line).chars().find(|&c| odd(c)).unwrap_or(' ');
        let count = text
            .lines()
            .filter(|line| strip_comment(line).contains(odd))
            .count();
        diags.push(
            Diag::warning(
                file,
                format!(
                    "non-ASCII space U+{:04X} on {count} line(s), first here; treated as a blank \
                     (Heartbeat would have read it as part of a word)",
                    c as u32
                ),
            )
            .at(index + 1),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_words() {
        assert_eq!(strip_comment("udpport 694   #comment"), "udpport 694   ");
        assert_eq!(strip_comment("#all"), "");
        let w: Vec<_> = words("node\u{a0}\u{a0}node0\t x").collect();
        assert_eq!(w, ["node", "node0", "x"]);
        assert_eq!(option_words("a,b  c,,d"), ["a", "b", "c", "d"]);
        assert_eq!(
            after_first_word("  stonith  baytech /etc/x y "),
            "baytech /etc/x y"
        );
        assert_eq!(after_first_word("crm"), "");
    }

    #[test]
    fn odd_spaces_warned_once() {
        let mut d = Vec::new();
        warn_odd_spaces(
            "a b\n#x\u{a0}\nnode\u{a0}n0\nping\u{a0}1\n",
            Path::new("f"),
            &mut d,
        );
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].line, Some(3));
        assert!(d[0].message.contains("U+00A0 on 2 line(s)"), "{}", d[0]);
    }
}
