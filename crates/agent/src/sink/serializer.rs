//! Event serializers for file sinks (`sink.serializer`): `TEXT` writes the body,
//! `HEADER_AND_TEXT` writes the headers as Java prints a map, a space, then the body; both end
//! each event with a newline unless `sink.serializer.appendNewline = false`.

use crate::config::context::Ctx;
use crate::config::registry::{
    resolve, unknown_message, Registration, Resolved, FLUME_ONLY_SERIALIZERS,
};
use crate::event::headers_java_string;
use file_channel::Event;

/// Makes a serializer from its `appendNewline`.
pub type MakeSerializer = fn(bool) -> Serializer;

/// The serializer types we implement (the registration table of event serializers).
pub const SERIALIZER_TYPES: &[Registration<MakeSerializer>] = &[
    Registration {
        alias: "text",
        classes: &["org.apache.flume.serialization.BodyTextEventSerializer$Builder"],
        parse: |append_newline| Serializer::Text { append_newline },
    },
    Registration {
        alias: "header_and_text",
        classes: &["org.apache.flume.serialization.HeaderAndBodyTextEventSerializer$Builder"],
        parse: |append_newline| Serializer::HeaderAndText { append_newline },
    },
];

/// How events are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Serializer {
    /// The body.
    Text {
        /// End with a newline.
        append_newline: bool,
    },
    /// `{k=v, ...} body`.
    HeaderAndText {
        /// End with a newline.
        append_newline: bool,
    },
}

impl Serializer {
    /// Reads `<key>` (the type, default TEXT) and `<key>.appendNewline` (true).
    pub fn parse(ctx: &Ctx<'_>, key: &str) -> Self {
        let append_newline = ctx.bool(&format!("{key}.appendNewline"), true);
        let ty = ctx.string_or(key, "TEXT");
        match resolve(&ty, SERIALIZER_TYPES, FLUME_ONLY_SERIALIZERS) {
            Resolved::Known(t) => (t.parse)(append_newline),
            other => {
                ctx.error(
                    key,
                    unknown_message("serializer", &ty, &other, SERIALIZER_TYPES),
                );
                Self::Text { append_newline }
            }
        }
    }

    /// Appends `event`'s bytes to `out`.
    pub fn write(&self, event: &Event, out: &mut Vec<u8>) {
        let newline = match *self {
            Self::Text { append_newline } => append_newline,
            Self::HeaderAndText { append_newline } => {
                out.extend_from_slice(headers_java_string(event).as_bytes());
                out.push(b' ');
                append_newline
            }
        };
        out.extend_from_slice(&event.body);
        if newline {
            out.push(b'\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::test_support::{ctx, entries};

    #[test]
    fn text_and_header_and_text() {
        let e = Event::new("hello")
            .with_header("a", "1")
            .with_header("b", "2");
        let mut out = Vec::new();
        Serializer::Text {
            append_newline: true,
        }
        .write(&e, &mut out);
        Serializer::HeaderAndText {
            append_newline: true,
        }
        .write(&e, &mut out);
        Serializer::Text {
            append_newline: false,
        }
        .write(&e, &mut out);
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "hello\n{a=1, b=2} hello\nhello"
        );
    }

    #[test]
    fn parse_names_and_refusals() {
        let list = entries(&[
            ("sink.serializer", "header_and_text"),
            ("sink.serializer.appendNewline", "false"),
        ]);
        assert_eq!(
            Serializer::parse(&ctx(&list), "sink.serializer"),
            Serializer::HeaderAndText {
                append_newline: false
            }
        );
        let list = entries(&[("sink.serializer", "avro_event")]);
        let c = ctx(&list);
        Serializer::parse(&c, "sink.serializer");
        let errs: Vec<String> = c
            .finish("sink")
            .errors
            .iter()
            .map(|p| p.display(std::path::Path::new("f")).to_string())
            .collect();
        assert_eq!(
            errs,
            vec!["f:2: a1.sinks.k1.sink.serializer: `avro_event` is a Flume serializer type (org.apache.flume.serialization.FlumeEventAvroEventSerializer$Builder) that Sluice does not implement yet; known serializer types: text, header_and_text"]
        );
    }
}
