//! The metrics endpoint (`--metrics-http ADDR`): `GET /metrics` returns Flume's JSON shape,
//! `GET /metrics/prometheus` the same values in Prometheus text format. Read-only; anything
//! else is 404.

use super::{render, Registry};
use crate::stop::Stop;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use axum::Router;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Serves the metrics of `registry` on `listener` until `stop` is set.
pub async fn serve(
    listener: TcpListener,
    registry: Arc<Registry>,
    stop: Stop,
) -> std::io::Result<()> {
    let json_registry = registry.clone();
    let app = Router::new()
        .route(
            "/metrics",
            get(move || {
                let r = json_registry.clone();
                async move {
                    (
                        [(CONTENT_TYPE, "application/json")],
                        render::json(&r.snapshot()),
                    )
                }
            }),
        )
        .route(
            "/metrics/prometheus",
            get(move || {
                let r = registry.clone();
                async move {
                    (
                        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
                        render::prometheus(&r.snapshot()),
                    )
                }
            }),
        );
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.wait().await })
        .await
}
