//! The position file: Flume's JSON list of `{inode, pos, file}` entries, written as Gson
//! writes it and read back (`encode_positions`, `decode_positions`).

/// One entry of the position file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    /// The file's inode.
    pub inode: u64,
    /// Bytes committed.
    pub pos: u64,
    /// Its absolute path when written.
    pub file: String,
}

/// The position file's content, exactly as Flume (Gson) writes it:
/// `[{"inode":1,"pos":2,"file":"/a"}]`.
pub fn encode_positions(positions: &[Position]) -> String {
    let mut s = String::from("[");
    for (i, p) in positions.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!(
            "{{\"inode\":{},\"pos\":{},\"file\":{}}}",
            p.inode,
            p.pos,
            gson_string(&p.file)
        ));
    }
    s.push(']');
    s
}

/// A JSON string as Gson writes it (HTML-safe escaping, Gson's default).
fn gson_string(v: &str) -> String {
    let mut s = String::with_capacity(v.len() + 2);
    s.push('"');
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\t' => s.push_str("\\t"),
            '\u{8}' => s.push_str("\\b"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\u{c}' => s.push_str("\\f"),
            '<' | '>' | '&' | '=' | '\'' | '\u{2028}' | '\u{2029}' => {
                s.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => s.push_str(&format!("\\u{:04x}", c as u32)),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// Reads a position file (any JSON whitespace). Entries missing a field are skipped.
pub fn decode_positions(text: &str) -> Result<Vec<Position>, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let list = v.as_array().ok_or("not a JSON array")?;
    Ok(list
        .iter()
        .filter_map(|e| {
            Some(Position {
                inode: e.get("inode")?.as_u64()?,
                pos: e.get("pos")?.as_u64()?,
                file: e.get("file")?.as_str()?.to_owned(),
            })
        })
        .collect())
}
