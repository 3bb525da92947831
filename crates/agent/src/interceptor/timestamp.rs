//! `timestamp`: sets a header to the time of interception, in milliseconds since the epoch.
//! Keys: `preserveExisting` (false), `headerName` (`timestamp`).

use super::Interceptor;
use crate::config::context::Ctx;
use crate::event::{has_header, set_header};
use crate::metrics::now_epoch_ms;
use file_channel::Event;

/// The timestamp interceptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timestamp {
    /// Keep a header that is already there.
    pub preserve_existing: bool,
    /// The header to set.
    pub header: String,
}

impl Timestamp {
    /// Reads `preserveExisting` and `headerName`.
    pub fn parse(ctx: &Ctx<'_>) -> Self {
        Self {
            preserve_existing: ctx.bool("preserveExisting", false),
            header: ctx.string_or("headerName", "timestamp"),
        }
    }
}

impl Interceptor for Timestamp {
    fn intercept(&self, mut event: Event) -> Option<Event> {
        if !(self.preserve_existing && has_header(&event, &self.header)) {
            set_header(&mut event, &self.header, now_epoch_ms().to_string());
        }
        Some(event)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    #[test]
    fn sets_millis_and_respects_preserve_existing() {
        let list = entries(&[]);
        let i = Timestamp::parse(&ctx(&list));
        assert_eq!(
            i,
            Timestamp {
                preserve_existing: false,
                header: "timestamp".into()
            }
        );
        let before = now_epoch_ms();
        let e = i
            .intercept(Event::new("x").with_header("timestamp", "1"))
            .expect("kept");
        let ts: u64 = e.header("timestamp").expect("set").parse().expect("number");
        assert!(ts >= before && ts <= now_epoch_ms());
        assert_eq!(e.headers.len(), 1);

        let list = entries(&[("preserveExisting", "true"), ("headerName", "ts")]);
        let i = Timestamp::parse(&ctx(&list));
        let e = i
            .intercept(Event::new("x").with_header("ts", "1"))
            .expect("kept");
        assert_eq!(e.header("ts"), Some("1"));
        let e = i.intercept(Event::new("x")).expect("kept");
        assert!(e.header("ts").is_some());
    }
}
