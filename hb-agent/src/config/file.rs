//! Opening and reading configuration files without blocking and within
//! bounds. Every file read as configuration (ha.cf, haresources, authkeys,
//! the TOML file), at start-up, in `check` and on SIGHUP, goes through here:
//! a FIFO must not hang the reader, a symlink to /dev/zero must not fill
//! memory.
use std::fs::{File, Metadata, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use super::diag::Diag;

/// The largest configuration file read: far above any real ha.cf,
/// haresources, authkeys or hb.toml.
pub(crate) const MAX_BYTES: u64 = 1 << 20;
const MAX_SHOWN: &str = "1 MiB";

/// U+FEFF in UTF-8: the byte order mark some editors write first.
const BOM: &[u8] = b"\xef\xbb\xbf";

/// A configuration file, opened but not read yet. `meta` is the fstat of
/// the open descriptor, so what is checked on it (authkeys' mode) holds for
/// the content `read` returns, whatever happens to the path meanwhile.
pub(crate) struct Opened<'a> {
    path: &'a Path,
    file: File,
    pub meta: Metadata,
}

/// Opens `path` without blocking (O_NONBLOCK: a FIFO without a writer opens
/// at once, to be refused; O_NOCTTY: a terminal does not become ours) and
/// refuses anything but a regular file of at most `MAX_BYTES`, before a byte
/// is read.
pub(crate) fn open(path: &Path) -> Result<Opened<'_>, Diag> {
    let cannot = |err: std::io::Error| Diag::error(path, format!("cannot read: {err}"));
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .map_err(cannot)?;
    let meta = file.metadata().map_err(cannot)?;
    if let Some(kind) = not_regular(&meta) {
        return Err(Diag::error(path, format!("is {kind}, not a regular file")));
    }
    if meta.len() > MAX_BYTES {
        return Err(Diag::error(
            path,
            format!(
                "is {} bytes, over the {MAX_SHOWN} limit for a configuration file",
                meta.len()
            ),
        ));
    }
    Ok(Opened { path, file, meta })
}

impl Opened<'_> {
    /// The content: at most `MAX_BYTES` even if the file grows while read,
    /// without a leading byte order mark (it would glue itself to the first
    /// directive, which would then be unknown).
    pub(crate) fn read(self) -> Result<Vec<u8>, Diag> {
        let mut bytes = Vec::with_capacity(self.meta.len() as usize);
        self.file
            .take(MAX_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|err| Diag::error(self.path, format!("cannot read: {err}")))?;
        if bytes.len() as u64 > MAX_BYTES {
            return Err(Diag::error(
                self.path,
                format!(
                    "grew over the {MAX_SHOWN} limit for a configuration file while being read"
                ),
            ));
        }
        if bytes.starts_with(BOM) {
            tracing::debug!("{}: leading byte order mark ignored", self.path.display());
            bytes.drain(..BOM.len());
        }
        Ok(bytes)
    }
}

/// `open`, then `read`.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, Diag> {
    open(path)?.read()
}

/// What the file is, when it is not a regular file.
fn not_regular(meta: &Metadata) -> Option<&'static str> {
    let t = meta.file_type();
    if t.is_file() {
        None
    } else if t.is_dir() {
        Some("a directory")
    } else if t.is_fifo() {
        Some("a FIFO")
    } else if t.is_char_device() {
        Some("a character device")
    } else if t.is_block_device() {
        Some("a block device")
    } else if t.is_socket() {
        Some("a socket")
    } else {
        Some("a special file")
    }
}
