//! Header helpers over [`file_channel::Event`], whose headers are an ordered list: Flume's
//! events hold a map, so setting a header replaces the first value of that key (or appends),
//! and a key is never added twice by the agent.

pub use file_channel::Event;

/// Sets `key` to `value`, replacing an existing value in place.
pub fn set_header(event: &mut Event, key: &str, value: String) {
    match event.headers.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = value,
        None => event.headers.push((key.to_owned(), value)),
    }
}

/// Whether the event has header `key`.
pub fn has_header(event: &Event, key: &str) -> bool {
    event.headers.iter().any(|(k, _)| k == key)
}

/// The headers as Java's `Map.toString()` prints them: `{k1=v1, k2=v2}` (insertion order).
pub fn headers_java_string(event: &Event) -> String {
    let mut s = String::from("{");
    for (i, (k, v)) in event.headers.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(k);
        s.push('=');
        s.push_str(v);
    }
    s.push('}');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_replaces_in_place_or_appends() {
        let mut e = Event::new("x").with_header("a", "1").with_header("b", "2");
        set_header(&mut e, "a", "3".into());
        set_header(&mut e, "c", "4".into());
        assert_eq!(headers_java_string(&e), "{a=3, b=2, c=4}");
        assert!(has_header(&e, "c"));
        assert_eq!(headers_java_string(&Event::new("x")), "{}");
    }
}
