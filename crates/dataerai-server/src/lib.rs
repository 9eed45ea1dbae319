//! `dataerai-server`: the Dataerai REST service, as a library; `main.rs` is
//! the thin binary over it.
//!
//! - [`cli`]: flags and environment variables; [`config`]: the TOML file,
//!   precedence, and opening the configured stores; [`connections`]: the
//!   accept loop with its connection cap and read timeouts.
//! - [`admin`]: bootstrap commands that write straight into the metadata store.
//! - [`housekeeping`]: the periodic upload expiry and chunk garbage collection.
//! - [`routes`]: the HTTP API (`docs/api.md`), [`auth`] for bearer tokens,
//!   [`error`] for the one JSON error shape.
//! - [`metrics`]: Prometheus counters at `/metrics`; `faults` (feature
//!   `fault-injection` only): the test-only `DATAERAI_FAULTS` switch.
//! - Storage is `dataerai-store`: metadata and blobs behind traits — SQLite +
//!   local directory by default, PostgreSQL + S3 to scale out. Replicas keep
//!   no transfer state of their own ([`state`]), so any number can share one
//!   database and one bucket behind a load balancer.

#![forbid(unsafe_code)]

pub mod admin;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod connections;
pub mod error;
#[cfg(feature = "fault-injection")]
pub mod faults;
pub mod housekeeping;
pub mod metrics;
pub mod oauth;
pub mod openapi;
pub mod provenance;
pub mod routes;
pub mod state;
pub mod web;

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use dataerai_store::BlobStore;
use tokio::net::TcpListener;

use cli::ServeArgs;
use state::AppState;

/// How long requests in flight may run after a shutdown signal.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// Serves the API until SIGTERM/SIGINT, then drains (see [`SHUTDOWN_GRACE`]).
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    #[cfg(feature = "fault-injection")]
    faults::init_from_env()?;
    let settings = config::serve(&args)?;
    let (meta, blobs) = settings.storage.open().await?;
    let blobs: Arc<dyn BlobStore> = blobs;
    #[cfg(feature = "fault-injection")]
    let blobs = faults::wrap_blobs(blobs);
    let mut state = AppState::new(meta, blobs, settings.default_quota_bytes);
    state.auth = Arc::new(settings.auth.clone());
    housekeeping::spawn(&state, &settings.uploads, &settings.gc);
    let stopping = state.stopping.clone();
    let drain = std::time::Duration::from_millis(settings.shutdown_drain_ms);
    let listener = TcpListener::bind(settings.listen).await?;
    let addr = listener.local_addr()?;
    // Tests and scripts parse this exact line to learn the port.
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on http://{addr}")?;
    stdout.flush()?;
    tracing::info!(%addr, storage = %settings.storage.describe(), "dataerai-server started");
    // On SIGTERM/SIGINT: new requests get 503 + Retry-After (clients retry
    // elsewhere or later) for the drain period, then stop accepting and let
    // requests in flight finish, but not forever: a stalled download must not
    // keep the process alive.
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let max_connections = connections::fit_connection_cap(settings.http.max_connections);
    let metrics = state.metrics.clone();
    let app = routes::router(state)
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            settings.http.body_read_timeout(),
        ))
        // No answer is ever sniffed into another content type (a JSON error
        // or a download rendered as HTML).
        .layer(tower_http::set_header::SetResponseHeaderLayer::overriding(
            axum::http::header::X_CONTENT_TYPE_OPTIONS,
            axum::http::HeaderValue::from_static("nosniff"),
        ));
    let server = connections::serve(
        listener,
        app,
        metrics,
        &settings.http,
        max_connections,
        settings.http.trusted_proxies()?,
        async move {
            shutdown_signal().await;
            stopping.store(true, Ordering::SeqCst);
            tokio::time::sleep(drain).await;
            let _ = stopping_tx.send(());
        },
    );
    tokio::select! {
        () = server => {}
        _ = async {
            if stopping_rx.await.is_ok() {
                tokio::time::sleep(SHUTDOWN_GRACE).await;
            } else {
                std::future::pending::<()>().await;
            }
        } => tracing::warn!("requests still running after {SHUTDOWN_GRACE:?}; stopping anyway"),
    }
    tracing::info!("dataerai-server stopped");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}
