//! A minimal JSON writer for the files the library itself writes (`quarantine/report.json` and
//! torn-tail notes), so the engine crate needs no serialization dependency. Output is one
//! object per call, keys in insertion order.

use crate::quarantine::json_escape;

/// A JSON value.
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An unsigned integer.
    U64(u64),
    /// A float (written with up to 6 decimals; non-finite values as `null`).
    F64(f64),
    /// A string.
    Str(String),
    /// An array.
    Arr(Vec<Json>),
    /// An object, keys in order.
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// An empty object.
    pub fn obj() -> Self {
        Self::Obj(Vec::new())
    }

    /// Adds a key to an object (no effect on other values); builder style.
    #[must_use]
    pub fn with(mut self, key: &str, value: impl Into<Json>) -> Self {
        if let Self::Obj(v) = &mut self {
            v.push((key.to_owned(), value.into()));
        }
        self
    }

    /// The compact text.
    pub fn render(&self) -> String {
        let mut s = String::new();
        self.write(&mut s);
        s
    }

    fn write(&self, out: &mut String) {
        match self {
            Self::Null => out.push_str("null"),
            Self::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Self::U64(n) => out.push_str(&n.to_string()),
            Self::F64(x) if x.is_finite() => out.push_str(&format!("{x:.6}")),
            Self::F64(_) => out.push_str("null"),
            Self::Str(s) => {
                out.push('"');
                out.push_str(&json_escape(s));
                out.push('"');
            }
            Self::Arr(v) => {
                out.push('[');
                for (i, x) in v.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    x.write(out);
                }
                out.push(']');
            }
            Self::Obj(v) => {
                out.push('{');
                for (i, (k, x)) in v.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push('"');
                    out.push_str(&json_escape(k));
                    out.push_str("\":");
                    x.write(out);
                }
                out.push('}');
            }
        }
    }
}

impl From<u64> for Json {
    fn from(n: u64) -> Self {
        Self::U64(n)
    }
}

impl From<bool> for Json {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}

impl From<f64> for Json {
    fn from(x: f64) -> Self {
        Self::F64(x)
    }
}

impl From<&str> for Json {
    fn from(s: &str) -> Self {
        Self::Str(s.to_owned())
    }
}

impl From<String> for Json {
    fn from(s: String) -> Self {
        Self::Str(s)
    }
}

impl From<&std::path::Path> for Json {
    fn from(p: &std::path::Path) -> Self {
        Self::Str(p.display().to_string())
    }
}

impl From<Vec<Json>> for Json {
    fn from(v: Vec<Json>) -> Self {
        Self::Arr(v)
    }
}

impl<T: Into<Json>> From<Option<T>> for Json {
    fn from(o: Option<T>) -> Self {
        o.map_or(Self::Null, Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_nested_values_with_escapes() {
        let j = Json::obj()
            .with("a", 1u64)
            .with("b", "x\"y\n")
            .with("c", vec![Json::Null, true.into()])
            .with("d", None::<u64>);
        assert_eq!(
            j.render(),
            r#"{"a":1,"b":"x\"y\n","c":[null,true],"d":null}"#
        );
    }
}
