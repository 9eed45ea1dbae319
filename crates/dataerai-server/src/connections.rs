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
//! - **Client address** ([`ClientIp`], for sign-in limits and the audit log):
//!   the connection's peer; when the peer is one of `trusted_proxies`, the
//!   right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
//!   A client cannot choose its address by sending the header itself.
//!
//! Only HTTP/1.1 is served: the clients speak it, and TLS and HTTP/2 belong to
//! the reverse proxy in front (docs/deployment.md).

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use ipnet::IpNet;
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
    /// Addresses or CIDR ranges of the reverse proxies whose
    /// `X-Forwarded-For` is believed (empty: the header is ignored).
    pub trusted_proxies: Vec<String>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            header_read_timeout_s: 30,
            body_read_timeout_s: 60,
            max_connections: 1024,
            trusted_proxies: Vec::new(),
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
        self.trusted_proxies()?;
        Ok(())
    }

    /// `trusted_proxies`, parsed.
    pub fn trusted_proxies(&self) -> anyhow::Result<TrustedProxies> {
        self.trusted_proxies
            .iter()
            .map(|entry| {
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        anyhow::anyhow!(
                            "[http] trusted_proxies: {entry:?} is not an address or CIDR range"
                        )
                    })
            })
            .collect::<anyhow::Result<_>>()
            .map(TrustedProxies)
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_s)
    }

    pub fn body_read_timeout(&self) -> Duration {
        Duration::from_secs(self.body_read_timeout_s)
    }
}

/// The local address a request was received at (links the server hands out
/// when no `public_url` is set point there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServedAt(pub std::net::SocketAddr);

/// The address a request comes from, as [`TrustedProxies::client`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// The reverse proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client of a request that arrived from `peer`: `peer` itself unless
    /// it is a trusted proxy; then, reading `X-Forwarded-For` from the right
    /// (each proxy appends the address it saw), the first entry that is not a
    /// trusted proxy. An unreadable entry stops the walk at the last address
    /// a trusted proxy vouched for.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.trusts(client) {
            return client;
        }
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .map(|v| v.to_str().unwrap_or(""))
            .collect::<Vec<_>>()
            .join(",");
        for hop in hops.rsplit(',').map(str::trim) {
            match hop.parse::<IpAddr>() {
                Ok(ip) => client = ip.to_canonical(),
                Err(_) => break,
            }
            if !self.trusts(client) {
                break;
            }
        }
        client
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
    proxies: TrustedProxies,
    stop: impl Future<Output = ()>,
) {
    let proxies = Arc::new(proxies);
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
        let served_at = stream.local_addr().ok().map(ServedAt);
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(%err, "TCP_NODELAY");
        }
        metrics.connection(true);
        let metrics = metrics.clone();
        let app = app.clone();
        let proxies = proxies.clone();
        // The client address feeds sign-in rate limiting and the audit log.
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            let client = proxies.client(peer.ip(), request.headers());
            request.extensions_mut().insert(ClientIp(client));
            if let Some(at) = served_at {
                request.extensions_mut().insert(at);
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(list: &[&str]) -> TrustedProxies {
        HttpSettings {
            trusted_proxies: list.iter().map(|s| s.to_string()).collect(),
            ..HttpSettings::default()
        }
        .trusted_proxies()
        .unwrap()
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("x-forwarded-for", v.parse().unwrap());
        }
        headers
    }

    #[test]
    fn the_client_is_what_trusted_proxies_forwarded_for() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let nginx = proxies(&["127.0.0.1", "10.0.0.0/8"]);
        let cases: [(&TrustedProxies, &str, &[&str], &str); 9] = [
            // No trusted proxies: the header is ignored.
            (
                &TrustedProxies::default(),
                "127.0.0.1",
                &["203.0.113.5"],
                "127.0.0.1",
            ),
            // From a trusted proxy: the address it appended.
            (&nginx, "127.0.0.1", &["203.0.113.5"], "203.0.113.5"),
            // A client-sent value left of it is not believed.
            (
                &nginx,
                "127.0.0.1",
                &["1.1.1.1, 203.0.113.5"],
                "203.0.113.5",
            ),
            // Through two trusted proxies; headers split over lines count as one list.
            (
                &nginx,
                "127.0.0.1",
                &["203.0.113.5, 10.1.2.3"],
                "203.0.113.5",
            ),
            (
                &nginx,
                "127.0.0.1",
                &["203.0.113.5", "10.1.2.3"],
                "203.0.113.5",
            ),
            // Not from a trusted proxy: the peer, whatever it claims.
            (&nginx, "198.51.100.7", &["203.0.113.5"], "198.51.100.7"),
            // A trusted proxy without the header, or with garbage: the proxy.
            (&nginx, "127.0.0.1", &[], "127.0.0.1"),
            (&nginx, "127.0.0.1", &["not an address"], "127.0.0.1"),
            // IPv4 seen through an IPv6 socket.
            (&nginx, "::ffff:127.0.0.1", &["203.0.113.5"], "203.0.113.5"),
        ];
        for (trusted, peer, header, want) in cases {
            assert_eq!(
                trusted.client(ip(peer), &forwarded(header)),
                ip(want),
                "peer {peer}, X-Forwarded-For {header:?}"
            );
        }
        let bad = HttpSettings {
            trusted_proxies: vec!["nginx.local".into()],
            ..HttpSettings::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("nginx.local"));
    }
}
