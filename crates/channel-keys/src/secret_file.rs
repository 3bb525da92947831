//! Reading the small files that hold secrets: password files (Flume's: the whole file, with
//! surrounding whitespace trimmed, so the newline `echo` adds does not count) and raw key
//! files (exactly 32 bytes, accessible to their owner only). Reads are bounded: a device that
//! never ends or a huge file is an error, not a hang or an allocation.
//!
//! What was read is wiped when dropped ([`Zeroizing`]).

use crate::error::KeyConfigProblem;
use file_channel::encryption::{DataKey, DATA_KEY_BYTES};
use std::io::Read;
use std::path::Path;
use zeroize::Zeroizing;

/// The longest password file read.
pub const MAX_PASSWORD_FILE_BYTES: u64 = 64 * 1024;

/// Up to `limit` bytes of `path`; more is [`KeyConfigProblem::TooLarge`].
pub(crate) fn read_bounded(
    what: &'static str,
    path: &Path,
    limit: u64,
) -> Result<Zeroizing<Vec<u8>>, KeyConfigProblem> {
    let mut bytes = Zeroizing::new(Vec::new());
    std::fs::File::open(path)
        .and_then(|f| f.take(limit + 1).read_to_end(&mut bytes))
        .map_err(|e| KeyConfigProblem::read(what, path, e))?;
    if bytes.len() as u64 > limit {
        return Err(KeyConfigProblem::TooLarge {
            what,
            path: path.to_owned(),
            limit,
        });
    }
    Ok(bytes)
}

/// The password in `path`: UTF-8, surrounding whitespace trimmed (as Flume reads it), not
/// empty.
pub(crate) fn read_password(path: &Path) -> Result<Zeroizing<String>, KeyConfigProblem> {
    let bytes = read_bounded("password file", path, MAX_PASSWORD_FILE_BYTES)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| KeyConfigProblem::BadPassword {
        path: path.to_owned(),
        why: "is not UTF-8 text",
    })?;
    let password = text.trim();
    if password.is_empty() {
        return Err(KeyConfigProblem::BadPassword {
            path: path.to_owned(),
            why: "is empty",
        });
    }
    Ok(Zeroizing::new(password.to_owned()))
}

/// The key in the raw key file `path`: a regular file of exactly [`DATA_KEY_BYTES`] bytes
/// with no permission bit for group or others (checked on the opened file, so what is checked
/// is what is read).
pub(crate) fn read_key_file(path: &Path) -> Result<DataKey, KeyConfigProblem> {
    let file =
        std::fs::File::open(path).map_err(|e| KeyConfigProblem::read("key file", path, e))?;
    let meta = file
        .metadata()
        .map_err(|e| KeyConfigProblem::read("key file", path, e))?;
    if !meta.is_file() {
        return Err(KeyConfigProblem::KeyFileNotRegular {
            path: path.to_owned(),
        });
    }
    check_owner_only(path, &meta)?;
    // A little more than a key, so that a key written as hex or base64 text can be recognised.
    let mut bytes = Zeroizing::new(Vec::with_capacity(TEXT_KEY_BYTES_MAX));
    file.take(TEXT_KEY_BYTES_MAX as u64)
        .read_to_end(&mut bytes)
        .map_err(|e| KeyConfigProblem::read("key file", path, e))?;
    if bytes.len() != DATA_KEY_BYTES {
        return Err(KeyConfigProblem::KeyFileLength {
            path: path.to_owned(),
            bytes: meta.len().max(bytes.len() as u64),
            hint: if meta.len() <= TEXT_KEY_BYTES_MAX as u64 {
                text_hint(&bytes)
            } else {
                ""
            },
        });
    }
    DataKey::from_slice(&bytes).map_err(KeyConfigProblem::KeyId)
}

/// The most bytes of a key file read: enough for a key in hex with a line ending.
const TEXT_KEY_BYTES_MAX: usize = 2 * DATA_KEY_BYTES + 2;

/// A hint when the (whole) content of a key file looks like a key written as text.
fn text_hint(content: &[u8]) -> &'static str {
    let t = content.trim_ascii();
    if t.len() == 2 * DATA_KEY_BYTES && t.iter().all(u8::is_ascii_hexdigit) {
        " (this one looks like hex text: the file holds the raw bytes, e.g. `xxd -r -p HEXFILE > KEYFILE`)"
    } else if t.len() == 44
        && t.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"+/=".contains(c))
    {
        " (this one looks like base64 text: the file holds the raw bytes, e.g. `base64 -d B64FILE > KEYFILE`)"
    } else {
        ""
    }
}

#[cfg(unix)]
fn check_owner_only(path: &Path, meta: &std::fs::Metadata) -> Result<(), KeyConfigProblem> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyConfigProblem::KeyFileMode {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_owner_only(_path: &Path, _meta: &std::fs::Metadata) -> Result<(), KeyConfigProblem> {
    Ok(())
}
