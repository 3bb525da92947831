//! `static`: sets a fixed header. Keys: `preserveExisting` (true), `key` (`key`),
//! `value` (`value`).

use super::Interceptor;
use crate::config::context::Ctx;
use crate::event::{has_header, set_header};
use file_channel::Event;

/// The static interceptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Static {
    /// Keep a header that is already there.
    pub preserve_existing: bool,
    /// The header.
    pub key: String,
    /// Its value.
    pub value: String,
}

impl Static {
    /// Reads `preserveExisting`, `key` and `value`.
    pub fn parse(ctx: &Ctx<'_>) -> Self {
        Self {
            preserve_existing: ctx.bool("preserveExisting", true),
            key: ctx.string_or("key", "key"),
            value: ctx.string_or("value", "value"),
        }
    }
}

impl Interceptor for Static {
    fn intercept(&self, mut event: Event) -> Option<Event> {
        if !(self.preserve_existing && has_header(&event, &self.key)) {
            set_header(&mut event, &self.key, self.value.clone());
        }
        Some(event)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    #[test]
    fn defaults_and_preserve() {
        let list = entries(&[]);
        let i = Static::parse(&ctx(&list));
        let e = i.intercept(Event::new("x")).expect("kept");
        assert_eq!(e.header("key"), Some("value"));
        let e = i
            .intercept(Event::new("x").with_header("key", "mine"))
            .expect("kept");
        assert_eq!(
            e.header("key"),
            Some("mine"),
            "preserveExisting defaults to true"
        );

        let list = entries(&[
            ("preserveExisting", "false"),
            ("key", "dc"),
            ("value", "eu-1"),
        ]);
        let i = Static::parse(&ctx(&list));
        let e = i
            .intercept(Event::new("x").with_header("dc", "us"))
            .expect("kept");
        assert_eq!(e.header("dc"), Some("eu-1"));
    }
}
