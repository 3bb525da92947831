//! `http`: events POSTed as JSON (Flume's `HTTPSource` with its default `JSONHandler`).
//!
//! Keys and Flume's defaults: `bind` (`0.0.0.0`), `port` (required), `handler`
//! (`org.apache.flume.source.http.JSONHandler`, the only handler we have: any other is refused
//! by name), `enableSSL` (false; `true` is refused: put a TLS-terminating proxy in front).
//!
//! A request is `POST` (any path) with a JSON array of events,
//! `[{"headers": {"k": "v"}, "body": "text"}, …]`; `headers` and `body` may be missing
//! (no headers, empty body), header values and the body are strings, the body is stored as
//! UTF-8. All events of one request are committed in one transaction per channel. Answers:
//!
//! | status | when |
//! |---|---|
//! | 200, empty body | every event committed to every required channel (an empty array commits nothing) |
//! | 400 | the body is not such a JSON array, or is not UTF-8 (the message says where) |
//! | 405 | a method other than POST |
//! | 413 | a request body over 32 MiB |
//! | 503 | a channel is full (capacity, byte capacity, or disk space below its reserve): retry later |
//! | 500 | any other failure (the message says which) |
//!
//! Differences from Flume: a request's charset other than UTF-8 is refused with 400 (Flume
//! decodes it); GET is not accepted.

use super::commit::{commit, Call};
use super::netcat_udp::required_port;
use super::{BoxFuture, EventDrivenSource, SourceContext, SourceError};
use crate::config::context::Ctx;
use crate::stop::Stop;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header::CONTENT_TYPE, HeaderMap, Method, StatusCode};
use axum::Router;
use file_channel::Event;
use std::sync::atomic::Ordering::Relaxed;

/// Flume's default (and our only) handler.
pub const JSON_HANDLER: &str = "org.apache.flume.source.http.JSONHandler";
/// Largest request body.
pub const MAX_REQUEST_BYTES: usize = 32 << 20;

/// Configuration of an http source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpConfig {
    /// Address to listen on. `bind`. Default: `0.0.0.0`.
    pub bind: String,
    /// Port. `port`.
    pub port: u16,
}

impl HttpConfig {
    /// Reads the keys.
    pub fn parse(ctx: &Ctx<'_>) -> Self {
        if let Some(h) = ctx.string("handler") {
            if h.trim() != JSON_HANDLER {
                ctx.error(
                    "handler",
                    format!("handler {:?} is not supported; Sluice has only Flume's default, {JSON_HANDLER}", h.trim()),
                );
            }
        }
        if ctx.bool("enableSSL", false) {
            ctx.error(
                "enableSSL",
                "SSL is not supported by the http source; terminate TLS in a proxy in front of it",
            );
        }
        Self {
            bind: ctx.string_or("bind", "0.0.0.0"),
            port: required_port(ctx, "port"),
        }
    }
}

/// Why a request body is not a list of events.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadRequest(pub String);

/// Flume's `JSONHandler`: a JSON array of `{"headers": {...}, "body": "..."}`.
pub fn parse_json_events(body: &[u8]) -> Result<Vec<Event>, BadRequest> {
    let text = std::str::from_utf8(body)
        .map_err(|e| BadRequest(format!("the request body is not UTF-8: {e}")))?;
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| BadRequest(format!("Request has invalid JSON Syntax: {e}")))?;
    let serde_json::Value::Array(items) = value else {
        return Err(BadRequest(
            "expected a JSON array of events: [{\"headers\": {...}, \"body\": \"...\"}]".into(),
        ));
    };
    let mut events = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let serde_json::Value::Object(mut obj) = item else {
            return Err(BadRequest(format!("event {i} is not a JSON object")));
        };
        let body = match obj.remove("body") {
            None | Some(serde_json::Value::Null) => String::new(),
            Some(serde_json::Value::String(s)) => s,
            Some(_) => return Err(BadRequest(format!("event {i}: \"body\" is not a string"))),
        };
        let mut e = Event::new(body.into_bytes());
        match obj.remove("headers") {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::Object(h)) => {
                for (k, v) in h {
                    let serde_json::Value::String(v) = v else {
                        return Err(BadRequest(format!(
                            "event {i}: header {k:?} is not a string"
                        )));
                    };
                    e = e.with_header(k, v);
                }
            }
            Some(_) => {
                return Err(BadRequest(format!(
                    "event {i}: \"headers\" is not an object"
                )))
            }
        }
        events.push(e);
    }
    Ok(events)
}

/// The http source.
#[derive(Debug)]
pub struct HttpSource {
    config: HttpConfig,
    ctx: SourceContext,
}

impl HttpSource {
    /// An http source; nothing is bound before `start`.
    pub fn new(config: HttpConfig, ctx: SourceContext) -> Self {
        Self { config, ctx }
    }
}

impl EventDrivenSource for HttpSource {
    fn start(self: Box<Self>, stop: Stop) -> BoxFuture<Result<BoxFuture<()>, SourceError>> {
        Box::pin(async move {
            let (listener, local) = self
                .ctx
                .bind_tcp(&self.config.bind, self.config.port)
                .await?;
            tracing::info!(source = %self.ctx.name, addr = %local, "http source listening");
            let ctx = self.ctx;
            ctx.counters.lifetime.started();
            let app = Router::new()
                .fallback(handle)
                .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
                .with_state(ctx.clone());
            let serve: BoxFuture<()> = Box::pin(async move {
                if let Err(e) = axum::serve(listener, app)
                    .with_graceful_shutdown(async move { stop.wait().await })
                    .await
                {
                    tracing::error!(source = %ctx.name, error = %e, "http source failed");
                }
                ctx.counters.lifetime.stopped();
                tracing::info!(source = %ctx.name, "http source stopped");
            });
            Ok(serve)
        })
    }
}

async fn handle(
    State(ctx): State<SourceContext>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    if method != Method::POST {
        return (StatusCode::METHOD_NOT_ALLOWED, "use POST\n".into());
    }
    if let Some(ct) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        let charset = ct
            .split(';')
            .filter_map(|p| p.trim().strip_prefix("charset="))
            .next();
        if let Some(cs) = charset {
            let cs = cs.trim_matches('"');
            if !cs.eq_ignore_ascii_case("utf-8") && !cs.eq_ignore_ascii_case("utf8") {
                ctx.counters.event_read_fail.fetch_add(1, Relaxed);
                return (
                    StatusCode::BAD_REQUEST,
                    format!("Bad request from client. charset {cs} is not supported; use UTF-8\n"),
                );
            }
        }
    }
    let events = match parse_json_events(&body) {
        Ok(e) => e,
        Err(e) => {
            ctx.counters.event_read_fail.fetch_add(1, Relaxed);
            tracing::warn!(source = %ctx.name, error = %e, "bad request");
            return (
                StatusCode::BAD_REQUEST,
                format!("Bad request from client. {e}\n"),
            );
        }
    };
    match commit(&ctx, events, Call::Batch).await {
        Ok(()) => (StatusCode::OK, String::new()),
        Err(e) if e.is_channel_full() => {
            tracing::warn!(source = %ctx.name, error = %e, "channel full; answered 503");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("Error appending event to channel. Channel might be full. Consider increasing the channel capacity or make sure the sinks perform faster. ({e})\n"),
            )
        }
        Err(e) => {
            tracing::warn!(source = %ctx.name, error = %e, "cannot commit; answered 500");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Deliver failed. {e}\n"),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_flumes_json_shape() {
        let ev = parse_json_events(
            br#"[{"headers": {"a": "1", "b": "x"}, "body": "hello"}, {"body": "w\u00e9"}, {}]"#,
        )
        .expect("valid");
        assert_eq!(ev.len(), 3);
        assert_eq!(
            ev[0].headers,
            vec![("a".into(), "1".into()), ("b".into(), "x".into())]
        );
        assert_eq!(ev[0].body, b"hello");
        assert_eq!(ev[1].body, "wé".as_bytes());
        assert!(ev[2].headers.is_empty() && ev[2].body.is_empty());
        assert_eq!(parse_json_events(b"[]"), Ok(vec![]));
    }

    #[test]
    fn refuses_other_shapes_with_a_message() {
        let err = |b: &[u8]| parse_json_events(b).expect_err("bad").0;
        assert!(err(b"[{").starts_with("Request has invalid JSON Syntax"));
        assert!(err(br#"{"body": "x"}"#).starts_with("expected a JSON array"));
        assert_eq!(err(b"[1]"), "event 0 is not a JSON object");
        assert_eq!(
            err(br#"[{}, {"body": 5}]"#),
            "event 1: \"body\" is not a string"
        );
        assert_eq!(
            err(br#"[{"headers": {"a": 1}}]"#),
            "event 0: header \"a\" is not a string"
        );
        assert_eq!(
            err(br#"[{"headers": []}]"#),
            "event 0: \"headers\" is not an object"
        );
        assert!(err(b"[\"\xff\"]").starts_with("the request body is not UTF-8"));
    }
}
