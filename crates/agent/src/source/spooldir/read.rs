//! Reading the spooling directory: listing the files to read (`scan`) and reading one line
//! of a file (`read_line`).

use super::*;

/// Collects `(path, mtime)` of readable files under `dir`.
pub(super) fn scan(
    dir: &Path,
    tracker: &Path,
    filter: &NameFilter,
    recursive: bool,
    depth: usize,
    out: &mut Vec<(PathBuf, SystemTime)>,
) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        if out.len() >= MAX_FILES_PER_SCAN {
            break;
        }
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || path == tracker {
            continue;
        }
        let Ok(m) = std::fs::metadata(&path) else {
            continue; // Vanished or a dangling link.
        };
        if m.is_dir() {
            if recursive && depth < MAX_DIR_DEPTH {
                scan(&path, tracker, filter, recursive, depth + 1, out)?;
            }
        } else if m.is_file() && filter.accepts(&name) {
            out.push((path, m.modified().unwrap_or(SystemTime::UNIX_EPOCH)));
        }
    }
    Ok(())
}

/// Reads one line (up to `\n`, or the end of the file) into `raw` and decodes it. `None` at
/// the end of the file; `Some(Err(()))` for bad UTF-8 under `FAIL`. Lines longer than
/// `max_chars` characters are cut there and the rest of the line skipped, as Flume's
/// `LineDeserializer` does.
pub(super) fn read_line(
    r: &mut impl BufRead,
    max_chars: usize,
    policy: DecodeErrorPolicy,
    raw: &mut Vec<u8>,
) -> std::io::Result<Option<Result<Line, ()>>> {
    // Up to 4 bytes per character, plus a partial sequence at the cut.
    let max_bytes = max_chars.saturating_mul(4).saturating_add(4);
    raw.clear();
    let mut consumed = 0u64;
    let mut cut = false;
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            if consumed == 0 {
                return Ok(None);
            }
            break;
        }
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        let room = max_bytes.saturating_sub(raw.len());
        if chunk.len() > room {
            cut = true;
        }
        raw.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let n = done.unwrap_or(buf.len());
        r.consume(n);
        consumed += n as u64;
        if done.is_some() {
            break;
        }
    }
    let text = match policy {
        DecodeErrorPolicy::Fail => match std::str::from_utf8(raw) {
            Ok(s) => s.to_owned(),
            // A sequence cut at the byte limit is not an error of the file.
            Err(e) if cut && e.error_len().is_none() => {
                String::from_utf8_lossy(&raw[..e.valid_up_to()]).into_owned()
            }
            Err(_) => return Ok(Some(Err(()))),
        },
        DecodeErrorPolicy::Replace => String::from_utf8_lossy(raw).into_owned(),
        DecodeErrorPolicy::Ignore => raw.utf8_chunks().map(|c| c.valid()).collect(),
    };
    let body = match text.char_indices().nth(max_chars) {
        Some((i, _)) => {
            cut = true;
            text[..i].to_owned()
        }
        None => text,
    };
    if cut {
        tracing::warn!("line length exceeds max ({max_chars}), truncating line");
    }
    Ok(Some(Ok(Line { body, consumed })))
}
