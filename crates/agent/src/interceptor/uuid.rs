//! `uuid`: sets a header to a random UUID (Flume's morphline `UUIDInterceptor`).
//! Keys: `headerName` (`id`), `preserveExisting` (true), `prefix` (empty).

use super::Interceptor;
use crate::config::context::Ctx;
use crate::event::{has_header, set_header};
use file_channel::Event;

/// The UUID interceptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uuid {
    /// The header to set.
    pub header: String,
    /// Keep a header that is already there.
    pub preserve_existing: bool,
    /// Put before the UUID.
    pub prefix: String,
}

impl Uuid {
    /// Reads `headerName`, `preserveExisting` and `prefix`.
    pub fn parse(ctx: &Ctx<'_>) -> Self {
        Self {
            header: ctx.string_or("headerName", "id"),
            preserve_existing: ctx.bool("preserveExisting", true),
            prefix: ctx.string_or("prefix", ""),
        }
    }
}

impl Interceptor for Uuid {
    fn intercept(&self, mut event: Event) -> Option<Event> {
        if !(self.preserve_existing && has_header(&event, &self.header)) {
            let id = format!("{}{}", self.prefix, ::uuid::Uuid::new_v4());
            set_header(&mut event, &self.header, id);
        }
        Some(event)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    #[test]
    fn random_ids_with_prefix() {
        let list = entries(&[("prefix", "web-")]);
        let i = Uuid::parse(&ctx(&list));
        let a = i.intercept(Event::new("x")).expect("kept");
        let b = i.intercept(Event::new("x")).expect("kept");
        let (a, b) = (a.header("id").expect("set"), b.header("id").expect("set"));
        assert_ne!(a, b);
        let raw = a.strip_prefix("web-").expect("prefix");
        assert_eq!(
            ::uuid::Uuid::parse_str(raw).map(|u| u.get_version_num()),
            Ok(4)
        );
        let kept = i
            .intercept(Event::new("x").with_header("id", "mine"))
            .expect("kept");
        assert_eq!(kept.header("id"), Some("mine"));
    }
}
