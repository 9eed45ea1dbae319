//! Accepting connections: a cap on how many are open at once, timeouts that
//! close slow or idle ones, and the graceful stop.
//!
//! - **Header-read timeout** (`[http] header_read_timeout_s`, 30 s): a
//!   request's header must arrive whole within it. Waiting for the next
//!   request on a kept-alive connection counts as reading its header, so the
//!   same timer closes idle keep-alive connections.
//! - **Body-read timeout** (`body_read_timeout_s`, 60 s): the longest pause
//!   between two pieces of a request body; a body that stops arriving ends
//!   the request (the handler sees a read error) instead of holding it.
//! - **Connection cap** (`max_connections`, 1024): a connection over the cap
//!   is closed as soon as it is accepted, so file descriptors stay bounded and
//!   the requests already in flight keep being served. The process's
//!   open-file limit is raised to its hard limit at start, and the cap is
//!   lowered (with a warning) if that limit cannot hold it.
//!
//! Only HTTP/1.1 is served: the clients speak it, and TLS and HTTP/2 belong to
//! the reverse proxy in front (docs/deployment.md).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::metrics::Metrics;

/// File descriptors kept free for everything that is not a client
/// connection: the database pool, blob files, logs.
const RESERVED_FDS: u64 = 256;

/// The `[http]` table of the config file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Seconds a client has to send a whole request header (and the longest
    /// a kept-alive connection may sit idle).
    pub header_read_timeout_s: u64,
    /// Seconds a request body may pause between two pieces.
    pub body_read_timeout_s: u64,
    /// Client connections open at once; more are closed when accepted.
    pub max_connections: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            header_read_timeout_s: 30,
            body_read_timeout_s: 60,
            max_connections: 1024,
        }
    }
}

impl HttpSettings {
    /// Refuse settings that would disable a protection by accident.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.header_read_timeout_s >= 1 && self.body_read_timeout_s >= 1,
            "[http] header_read_timeout_s and body_read_timeout_s must be at least 1 second"
        );
        anyhow::ensure!(
            self.max_connections >= 1,
            "[http] max_connections must be at least 1"
        );
        Ok(())
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_s)
    }

    pub fn body_read_timeout(&self) -> Duration {
        Duration::from_secs(self.body_read_timeout_s)
    }
}

/// Raise the open-file limit as far as allowed and return the connection cap
/// that fits under it.
pub fn fit_connection_cap(wanted: usize) -> usize {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(err) => {
            tracing::warn!(%err, "cannot read the open-file limit; keeping max_connections");
            return wanted;
        }
    };
    let room = usize::try_from(limit.saturating_sub(RESERVED_FDS))
        .unwrap_or(usize::MAX)
        .max(1);
    if wanted > room {
        tracing::warn!(
            wanted,
            open_file_limit = limit,
            cap = room,
            "max_connections does not fit under the open-file limit (ulimit -n); lowered"
        );
        room
    } else {
        wanted
    }
}

/// Serve `app` on `listener` until `stop` resolves, then stop accepting and
/// let the connections finish their requests (bounded by the caller).
///
/// Returns once every connection has closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    metrics: Arc<Metrics>,
    settings: &HttpSettings,
    max_connections: usize,
    stop: impl Future<Output = ()>,
) {
    let open = Arc::new(Semaphore::new(max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout());
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: back off a moment
                    // rather than spinning; connections in flight go on.
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            metrics.connection_refused();
            tracing::debug!(%peer, max_connections, "connection cap reached; closing");
            drop(stream);
            continue;
        };
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(%err, "TCP_NODELAY");
        }
        metrics.connection(true);
        let metrics = metrics.clone();
        let app = app.clone();
        // The peer address feeds sign-in rate limiting and the audit log.
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(request)
        });
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(%peer, %err, "connection closed with an error");
            }
            metrics.connection(false);
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
