//! `http`: events POSTed as JSON (Flume's `HTTPSource` with its default `JSONHandler`).
//!
//! Keys and Flume's defaults: `bind` (`0.0.0.0`), `port` (required), `handler`
//! (`org.apache.flume.source.http.JSONHandler`, the only handler we have: any other is refused
//! by name), `ssl` (false) with the TLS keys of [`crate::tls::ServerTls`]: HTTPS on every
//! connection (see [`super::net`]). Flume's deprecated names `enableSSL`, `keystorePassword`
//! and `excludeProtocols` are refused with the name to use instead.
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
//! Hostile clients (see [`super::net`]): `maxConnections` (1000) caps the connections served
//! at once, more are closed at once and counted in `ConnectionRejectedCount`. `readTimeout`
//! (30,000 ms) bounds the request headers (from the moment the server waits for them) and,
//! separately, the body: a request whose headers or body do not arrive in time is closed
//! (a stalled body is answered 408 first) and counted in `ReadTimeoutCount`. A keep-alive
//! connection idle for `readTimeout` between requests is closed too, as HTTP servers do (not
//! counted). Bodies are collected as they arrive, up to 32 MiB.
//!
//! Differences from Flume: a request's charset other than UTF-8 is refused with 400 (Flume
//! decodes it); GET is not accepted.

use super::commit::{commit, Call};
use super::net::{self, Connection, ConnectionLimits, Guard, Incoming, SourceTls, TlsConfig};
use super::netcat_udp::required_port;
use super::{BoxFuture, EventDrivenSource, SourceContext, SourceError};
use crate::config::context::Ctx;
use crate::stop::Stop;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use file_channel::Event;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;

/// Flume's default (and our only) handler.
pub const JSON_HANDLER: &str = "org.apache.flume.source.http.JSONHandler";
/// Largest request body.
pub const MAX_REQUEST_BYTES: usize = 32 << 20;
/// How often a stopping connection checks whether a request is still in the handler.
const SHUTDOWN_POLL: Duration = Duration::from_millis(50);

/// Configuration of an http source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpConfig {
    /// Address to listen on. `bind`. Default: `0.0.0.0`.
    pub bind: String,
    /// Port. `port`.
    pub port: u16,
    /// `maxConnections` and `readTimeout`.
    pub limits: ConnectionLimits,
    /// `ssl` and the TLS keys. Default: plain HTTP.
    pub tls: TlsConfig,
}

/// Flume's deprecated names of the http source's TLS keys, and the names to use.
const DEPRECATED_TLS_KEYS: [(&str, &str); 3] = [
    ("enableSSL", "ssl"),
    ("keystorePassword", "keystore-password"),
    ("excludeProtocols", "exclude-protocols"),
];

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
        // Refused rather than read as aliases: a deprecated key next to the new one would leave
        // which of them applies to the reader's guess.
        for (old, new) in DEPRECATED_TLS_KEYS {
            if ctx.get(old).is_some() {
                ctx.error(
                    old,
                    format!("{old} is Flume's deprecated name of {new}; use {new} instead"),
                );
            }
        }
        Self {
            bind: ctx.string_or("bind", "0.0.0.0"),
            port: required_port(ctx, "port"),
            limits: ConnectionLimits::parse(ctx),
            tls: TlsConfig::parse(ctx, "http source"),
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
    tls: SourceTls,
}

impl HttpSource {
    /// An http source; nothing is bound before `start`.
    pub fn new(config: HttpConfig, ctx: SourceContext) -> Self {
        Self {
            tls: config.tls.source_tls(),
            config,
            ctx,
        }
    }
}

impl EventDrivenSource for HttpSource {
    fn start(self: Box<Self>, stop: Stop) -> BoxFuture<Result<BoxFuture<()>, SourceError>> {
        Box::pin(async move {
            let (listener, local) = self
                .ctx
                .bind_tcp(&self.config.bind, self.config.port)
                .await?;
            tracing::info!(source = %self.ctx.name, addr = %local, tls = self.tls.is_some(), "http source listening");
            let ctx = self.ctx;
            ctx.counters.lifetime.started();
            let guard = Guard::new(&ctx, self.config.limits);
            let serve: BoxFuture<()> = Box::pin(serve(listener, ctx, guard, self.tls, stop));
            Ok(serve)
        })
    }
}

/// What the request handler needs.
#[derive(Clone)]
struct HandlerState {
    ctx: SourceContext,
    guard: Arc<Guard>,
    peer: std::net::SocketAddr,
    stop: Stop,
    /// Requests of this connection in the handler now.
    handlers_running: Arc<AtomicUsize>,
}

/// Counts a request in the handler while it lives.
struct Running(Arc<AtomicUsize>);

impl Running {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn serve(
    listener: TcpListener,
    ctx: SourceContext,
    guard: Arc<Guard>,
    tls: SourceTls,
    stop: Stop,
) {
    net::serve_connections(listener, &guard, &tls, &stop, |incoming| {
        connection(incoming, ctx.clone(), guard.clone(), stop.clone())
    })
    .await;
    ctx.counters.lifetime.stopped();
    tracing::info!(source = %ctx.name, "http source stopped");
}

/// Serves one connection with hyper, after its TLS handshake if the source has TLS: headers
/// within `readTimeout`, graceful shutdown on stop (a request in progress is answered, then the
/// connection closes).
async fn connection(incoming: Incoming, ctx: SourceContext, guard: Arc<Guard>, stop: Stop) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;
    let peer = incoming.peer();
    let Some(socket) = incoming.establish().await else {
        return;
    };
    ctx.counters.open_connection_count.fetch_add(1, Relaxed);
    let handlers_running = Arc::new(AtomicUsize::new(0));
    let app = Router::new().fallback(handle).with_state(HandlerState {
        ctx: ctx.clone(),
        guard: guard.clone(),
        peer,
        stop: stop.clone(),
        handlers_running: handlers_running.clone(),
    });
    let unanswered_bytes = Arc::new(AtomicUsize::new(0));
    let io = TokioIo::new(Tracked {
        socket,
        unanswered_bytes: unanswered_bytes.clone(),
    });
    let service = TowerToHyperService::new(app);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(guard.limits().read_timeout());
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = stop.wait() => {
            // A request being handled is answered (its body, if still arriving, with 503);
            // a connection with no request in a handler, idle or with a request head still
            // arriving, is dropped rather than waited for.
            conn.as_mut().graceful_shutdown();
            loop {
                tokio::select! {
                    r = conn.as_mut() => break r,
                    () = tokio::time::sleep(SHUTDOWN_POLL) => {
                        if handlers_running.load(Ordering::Relaxed) == 0 {
                            break Ok(());
                        }
                    }
                }
            }
        }
    };
    if let Err(e) = result {
        if e.is_timeout() {
            let received = unanswered_bytes.load(Ordering::Relaxed);
            if received > 0 {
                guard.timed_out(&peer, "HTTP request head", received);
            } else {
                tracing::debug!(source = %ctx.name, %peer, "idle keep-alive connection closed after readTimeout");
            }
        } else {
            tracing::debug!(source = %ctx.name, %peer, error = %e, "connection ended with an error");
        }
    }
    ctx.counters.open_connection_count.fetch_sub(1, Relaxed);
}

/// A connection that counts the bytes read since the last response was written: HTTP/1.1
/// answers requests in order, so they belong to a request not yet answered (none: the
/// connection is idle between requests).
struct Tracked {
    socket: Connection,
    unanswered_bytes: Arc<AtomicUsize>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.socket).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        if read > 0 {
            self.unanswered_bytes.fetch_add(read, Ordering::Relaxed);
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.unanswered_bytes.store(0, Ordering::Relaxed);
        Pin::new(&mut self.socket).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.socket).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.socket).poll_shutdown(cx)
    }
}

/// A plain-text answer; `close` adds `Connection: close`.
fn answer(status: StatusCode, text: String, close: bool) -> Response {
    let mut r = (status, text).into_response();
    if close {
        r.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
    }
    r
}

/// The request body, collected as it arrives (never preallocated from `Content-Length`), at
/// most [`MAX_REQUEST_BYTES`] (413 otherwise, at once when announced), within `readTimeout`
/// (408 otherwise, counted), and before the agent stops (503: a body still arriving does not
/// hold up stopping). A refusal closes the connection.
async fn read_body(
    state: &HandlerState,
    headers: &HeaderMap,
    mut body: Body,
) -> Result<Vec<u8>, Response> {
    use http_body_util::BodyExt;
    let ctx = &state.ctx;
    let too_large = || {
        ctx.counters.event_read_fail.fetch_add(1, Relaxed);
        tracing::warn!(source = %ctx.name, peer = %state.peer, "request body over {MAX_REQUEST_BYTES} bytes; answered 413");
        answer(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is over {MAX_REQUEST_BYTES} bytes\n"),
            true,
        )
    };
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > MAX_REQUEST_BYTES as u64) {
        return Err(too_large());
    }
    let timeout = state.guard.limits().read_timeout();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut collected = Vec::new();
    loop {
        let next = tokio::select! {
            next = tokio::time::timeout_at(deadline, body.frame()) => next,
            () = state.stop.wait() => {
                return Err(answer(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the agent is stopping; send the request again\n".into(),
                    true,
                ));
            }
        };
        let frame = match next {
            Ok(Some(Ok(frame))) => frame,
            Ok(None) => return Ok(collected),
            Ok(Some(Err(e))) => {
                tracing::debug!(source = %ctx.name, peer = %state.peer, error = %e, "request body not received");
                return Err(answer(
                    StatusCode::BAD_REQUEST,
                    format!("request body not received: {e}\n"),
                    true,
                ));
            }
            Err(_) => {
                state
                    .guard
                    .timed_out(&state.peer, "HTTP request body", collected.len());
                return Err(answer(
                    StatusCode::REQUEST_TIMEOUT,
                    format!(
                        "the request body did not arrive within readTimeout ({} ms)\n",
                        timeout.as_millis()
                    ),
                    true,
                ));
            }
        };
        if let Ok(data) = frame.into_data() {
            if collected.len() + data.len() > MAX_REQUEST_BYTES {
                return Err(too_large());
            }
            collected.extend_from_slice(&data);
        }
    }
}

async fn handle(
    State(state): State<HandlerState>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let _running = Running::new(&state.handlers_running);
    let ctx = &state.ctx;
    if method != Method::POST {
        return answer(StatusCode::METHOD_NOT_ALLOWED, "use POST\n".into(), false);
    }
    if let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        let charset = ct
            .split(';')
            .filter_map(|p| p.trim().strip_prefix("charset="))
            .next();
        if let Some(cs) = charset {
            let cs = cs.trim_matches('"');
            if !cs.eq_ignore_ascii_case("utf-8") && !cs.eq_ignore_ascii_case("utf8") {
                ctx.counters.event_read_fail.fetch_add(1, Relaxed);
                return answer(
                    StatusCode::BAD_REQUEST,
                    format!("Bad request from client. charset {cs} is not supported; use UTF-8\n"),
                    false,
                );
            }
        }
    }
    let body = match read_body(&state, &headers, body).await {
        Ok(b) => b,
        Err(refusal) => return refusal,
    };
    let events = match parse_json_events(&body) {
        Ok(e) => e,
        Err(e) => {
            ctx.counters.event_read_fail.fetch_add(1, Relaxed);
            tracing::warn!(source = %ctx.name, error = %e, "bad request");
            return answer(
                StatusCode::BAD_REQUEST,
                format!("Bad request from client. {e}\n"),
                false,
            );
        }
    };
    drop(body);
    match commit(ctx, events, Call::Batch).await {
        Ok(()) => answer(StatusCode::OK, String::new(), false),
        Err(e) if e.is_channel_full() => {
            tracing::warn!(source = %ctx.name, error = %e, "channel full; answered 503");
            answer(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("Error appending event to channel. Channel might be full. Consider increasing the channel capacity or make sure the sinks perform faster. ({e})\n"),
                false,
            )
        }
        Err(e) => {
            tracing::warn!(source = %ctx.name, error = %e, "cannot commit; answered 500");
            answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Deliver failed. {e}\n"),
                false,
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
