//! Sign-in: the OAuth 2.0 Device Authorization Grant (RFC 8628) that
//! `dataerai auth login` runs, and [`TokenSource`], which hands every request
//! the current bearer token and keeps an OAuth access token fresh.
//!
//! Refreshing spends the refresh token (the server rotates it, and treats a
//! second use as theft and revokes the whole login). So a refresh happens only
//! under an exclusive `flock` on `credentials.lock` beside the credential file
//! (shared by the daemon and every CLI process of the user), and the file is
//! re-read after the lock is taken: whoever comes second finds the new token
//! and uses it instead of refreshing again.
//!
//! Tokens never reach a log line: [`TokenResponse`] and
//! [`crate::credentials::Credentials`] redact them in `Debug`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use dataerai_proto::{ApiError, ErrorCode};
use serde::Deserialize;

use crate::api::TokenProvider;
use crate::credentials::{self, Credentials, TOKEN_KIND_OAUTH};
use crate::status::{code_for_status, unreachable};

pub type Result<T> = std::result::Result<T, ApiError>;

/// OAuth `client_id` of the CLI/daemon.
pub const CLIENT_ID: &str = "dataerai-cli";
/// Scopes the device flow asks for.
pub const SCOPE: &str = "read write";
const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// Refresh at most this long before the access token expires.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// `POST /oauth/device/code` reply.
#[derive(Debug, Clone, Deserialize)]
pub struct DeviceCode {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    #[serde(default)]
    pub verification_uri_complete: Option<String>,
    pub expires_in: u64,
    #[serde(default)]
    pub interval: Option<u64>,
}

/// `POST /oauth/token` success reply (RFC 6749 §5.1).
#[derive(Clone, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    #[serde(default)]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
    /// Optional, non-standard (as GitHub sends it): lifetime of the refresh token.
    #[serde(default)]
    pub refresh_token_expires_in: Option<u64>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish()
    }
}

/// `POST /oauth/token` error reply (RFC 6749 §5.2).
#[derive(Debug, Clone, Deserialize)]
pub struct OAuthError {
    pub error: String,
    #[serde(default)]
    pub error_description: Option<String>,
}

/// What to tell a user whose OAuth login cannot be renewed.
pub fn login_again(server: &str, why: &str) -> ApiError {
    ApiError::new(
        ErrorCode::AuthRequired,
        format!("{why}: run `dataerai auth login --server {server}`"),
    )
}

/// An HTTP client for the OAuth endpoints (no bearer token involved).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .user_agent(concat!("dataerai/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

/// POST a form to an OAuth endpoint: `Ok(Ok(body))` on 2xx, `Ok(Err(oauth
/// error))` for an RFC-shaped error body, `Err` for anything else.
async fn oauth_post<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    server: &str,
    path: &str,
    form: &[(&str, &str)],
) -> Result<std::result::Result<T, OAuthError>> {
    let url = format!("{server}{path}");
    let resp = http
        .post(&url)
        .form(form)
        .send()
        .await
        .map_err(|e| unreachable(server, e))?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(|e| unreachable(server, e))?;
    if status.is_success() {
        return serde_json::from_slice(&body)
            .map(Ok)
            .map_err(|e| ApiError::internal(format!("unexpected reply from {url}: {e}")));
    }
    if let Ok(err) = serde_json::from_slice::<OAuthError>(&body) {
        return Ok(Err(err));
    }
    let code = match status.as_u16() {
        404 | 405 => {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                format!("{server} does not offer browser sign-in (HTTP {status} from {path}); use `dataerai auth login --server {server} --token-stdin` with a personal access token"),
            ))
        }
        500..=599 => ErrorCode::ServerUnreachable,
        _ => code_for_status(status),
    };
    Err(ApiError::new(
        code,
        format!("server {server} answered HTTP {status} to {path}"),
    ))
}

/// Step 1 of the device flow.
pub async fn request_device_code(http: &reqwest::Client, server: &str) -> Result<DeviceCode> {
    match oauth_post(
        http,
        server,
        "/oauth/device/code",
        &[("client_id", CLIENT_ID), ("scope", SCOPE)],
    )
    .await?
    {
        Ok(code) => Ok(code),
        Err(e) => Err(ApiError::new(
            ErrorCode::InvalidInput,
            format!(
                "the server refused to start a sign-in: {}{}",
                e.error,
                e.error_description
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            ),
        )),
    }
}

/// One poll of the token endpoint.
#[derive(Debug)]
pub enum Poll {
    /// Not approved yet (`authorization_pending`).
    Pending,
    /// Poll less often (`slow_down`: add 5 s to the interval).
    SlowDown,
    Granted(TokenResponse),
}

/// Step 2: ask whether the user approved the code yet.
pub async fn poll_device_token(
    http: &reqwest::Client,
    server: &str,
    device_code: &str,
) -> Result<Poll> {
    let form = [
        ("grant_type", DEVICE_CODE_GRANT),
        ("device_code", device_code),
        ("client_id", CLIENT_ID),
    ];
    match oauth_post::<TokenResponse>(http, server, "/oauth/token", &form).await? {
        Ok(t) => Ok(Poll::Granted(t)),
        Err(e) => match e.error.as_str() {
            "authorization_pending" => Ok(Poll::Pending),
            "slow_down" => Ok(Poll::SlowDown),
            "access_denied" => Err(ApiError::new(
                ErrorCode::PermissionDenied,
                "the sign-in was denied in the browser; nothing was saved",
            )),
            "expired_token" => Err(ApiError::new(
                ErrorCode::AuthRequired,
                "the code expired before it was approved: run `dataerai auth login` again",
            )),
            other => Err(ApiError::new(
                ErrorCode::AuthRequired,
                format!(
                    "sign-in failed: {other}{}",
                    e.error_description
                        .map(|d| format!(" ({d})"))
                        .unwrap_or_default()
                ),
            )),
        },
    }
}

/// Credentials for a token reply; `issued_at` is when the request was sent
/// (so the expiry errs on the early side).
pub fn oauth_credentials(
    server: &str,
    user_id: String,
    user_email: String,
    t: &TokenResponse,
    issued_at: DateTime<Utc>,
) -> Credentials {
    let after =
        |secs: u64| issued_at + chrono::Duration::seconds(secs.min(i64::MAX as u64 / 1000) as i64);
    Credentials {
        server: server.to_string(),
        token: t.access_token.clone(),
        user_id,
        user_email,
        expires_at: t.expires_in.map(after),
        token_kind: Some(TOKEN_KIND_OAUTH.into()),
        refresh_token: t.refresh_token.clone(),
        refresh_expires_at: t.refresh_token_expires_in.map(after),
        issued_at: Some(issued_at),
    }
}

/// Whether an OAuth access token should be renewed now: when less than a
/// minute, or less than a tenth of its lifetime, is left (whichever is
/// shorter, so that a 5-second token in a test is not refreshed on every call).
pub fn needs_refresh(c: &Credentials, now: DateTime<Utc>) -> bool {
    if !c.is_oauth() || c.refresh_token.is_none() {
        return false;
    }
    let Some(exp) = c.expires_at else {
        return false;
    };
    let margin = chrono::Duration::from_std(REFRESH_MARGIN).unwrap_or_default();
    let margin = match c.issued_at {
        Some(iat) if exp > iat => margin.min((exp - iat) / 10),
        _ => margin,
    };
    exp - now <= margin
}

fn same_server(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// Hands out the bearer token of the saved login, re-reading the credential
/// file on every use (so login/logout apply at once) and refreshing an OAuth
/// access token when it is about to expire or the server refused it.
pub struct TokenSource {
    config_dir: PathBuf,
    http: reqwest::Client,
    /// Tasks of this process queue here rather than each holding a blocking
    /// thread while they wait for the file lock.
    gate: tokio::sync::Mutex<()>,
}

impl TokenSource {
    pub fn new(config_dir: PathBuf) -> Arc<TokenSource> {
        Arc::new(TokenSource {
            config_dir,
            http: http_client(),
            gate: tokio::sync::Mutex::new(()),
        })
    }

    fn load_for(&self, server: &str) -> Result<Credentials> {
        let c = credentials::load_credentials(&self.config_dir)?;
        if !same_server(&c.server, server) {
            return Err(login_again(
                server,
                &format!("the saved login is now for another server ({})", c.server),
            ));
        }
        Ok(c)
    }

    /// Spend the refresh token for a new access + refresh token, unless another
    /// process did so while we waited for the lock.
    pub async fn refresh(&self, server: &str, stale: &str) -> Result<Credentials> {
        let _gate = self.gate.lock().await;
        let dir = self.config_dir.clone();
        let _lock = tokio::task::spawn_blocking(move || credentials::lock_credentials(&dir))
            .await
            .map_err(|e| ApiError::internal(format!("lock task failed: {e}")))?
            .map_err(|e| {
                ApiError::internal(format!(
                    "cannot lock {}: {e}",
                    self.config_dir
                        .join(credentials::CREDENTIALS_LOCK_FILE)
                        .display()
                ))
            })?;
        let c = self.load_for(server)?;
        let now = Utc::now();
        if c.token != stale && !needs_refresh(&c, now) {
            return Ok(c);
        }
        let Some(refresh_token) = c.refresh_token.clone().filter(|_| c.is_oauth()) else {
            return Err(login_again(server, "the saved token has expired"));
        };
        if c.refresh_expires_at.is_some_and(|t| t <= now) {
            return Err(login_again(server, "your sign-in has expired"));
        }
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.as_str()),
            ("client_id", CLIENT_ID),
        ];
        let t = match oauth_post::<TokenResponse>(&self.http, &c.server, "/oauth/token", &form)
            .await?
        {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!("token refresh refused: {}", e.error);
                return Err(login_again(
                    server,
                    &format!("your sign-in has expired or was revoked ({})", e.error),
                ));
            }
        };
        let mut fresh =
            oauth_credentials(&c.server, c.user_id.clone(), c.user_email.clone(), &t, now);
        // A server that does not rotate keeps the old refresh token valid.
        if fresh.refresh_token.is_none() {
            fresh.refresh_token = Some(refresh_token);
            fresh.refresh_expires_at = c.refresh_expires_at;
        }
        if fresh.refresh_expires_at.is_none() && t.refresh_token.is_none() {
            fresh.refresh_expires_at = c.refresh_expires_at;
        }
        credentials::save_credentials(&self.config_dir, &fresh).map_err(|e| {
            ApiError::internal(format!(
                "refreshed the sign-in but cannot save it in {}: {e}",
                self.config_dir.display()
            ))
        })?;
        tracing::debug!(
            "refreshed the access token (expires {:?})",
            fresh.expires_at
        );
        Ok(fresh)
    }
}

#[async_trait::async_trait]
impl TokenProvider for TokenSource {
    /// The token to send to `server` now (refreshed first when due).
    async fn token(&self, server: &str) -> Result<String> {
        let c = self.load_for(server)?;
        if needs_refresh(&c, Utc::now()) {
            return Ok(self.refresh(server, &c.token).await?.token);
        }
        Ok(c.token)
    }

    /// The server answered 401 to `rejected`: a token to try again with, or
    /// `ERR_AUTH_REQUIRED` telling the user to sign in again.
    async fn after_rejection(&self, server: &str, rejected: &str) -> Result<String> {
        let c = self.load_for(server)?;
        if c.token != rejected {
            // Someone (another process, a new login) already replaced it.
            return Ok(c.token);
        }
        if c.kind() == credentials::TOKEN_KIND_ENV {
            return Err(ApiError::new(
                ErrorCode::AuthRequired,
                format!(
                    "{server} refused the token in {} (expired or revoked): set a valid one, or unset it to use the saved login",
                    credentials::TOKEN_ENV
                ),
            ));
        }
        if !c.is_oauth() {
            return Err(login_again(
                server,
                "the server refused the saved token (expired or revoked)",
            ));
        }
        Ok(self.refresh(server, rejected).await?.token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(issued: DateTime<Utc>, lifetime_s: i64) -> Credentials {
        Credentials {
            server: "http://x".into(),
            token: "at".into(),
            user_id: "u".into(),
            user_email: "e".into(),
            expires_at: Some(issued + chrono::Duration::seconds(lifetime_s)),
            token_kind: Some(TOKEN_KIND_OAUTH.into()),
            refresh_token: Some("rt".into()),
            refresh_expires_at: None,
            issued_at: Some(issued),
        }
    }

    #[test]
    fn refresh_is_due_near_expiry() {
        let t0 = Utc::now();
        let s = chrono::Duration::seconds;
        // One hour: due in the last minute.
        let c = creds(t0, 3600);
        assert!(!needs_refresh(&c, t0));
        assert!(!needs_refresh(&c, t0 + s(3500)));
        assert!(needs_refresh(&c, t0 + s(3541)));
        assert!(needs_refresh(&c, t0 + s(4000)));
        // Ten seconds: due in the last second only.
        let c = creds(t0, 10);
        assert!(!needs_refresh(&c, t0 + s(5)));
        assert!(needs_refresh(&c, t0 + s(10)));
        // PATs and logins without a refresh token are never refreshed.
        let mut pat = creds(t0, 10);
        pat.token_kind = Some("pat".into());
        assert!(!needs_refresh(&pat, t0 + s(100)));
        let mut no_rt = creds(t0, 10);
        no_rt.refresh_token = None;
        assert!(!needs_refresh(&no_rt, t0 + s(100)));
    }

    #[test]
    fn token_response_debug_hides_tokens() {
        let t: TokenResponse = serde_json::from_str(
            r#"{"access_token":"dtr_at_secret","token_type":"Bearer","expires_in":5,"refresh_token":"dtr_rt_secret","scope":"read write"}"#,
        )
        .unwrap();
        let d = format!("{t:?}");
        assert!(!d.contains("secret"), "{d}");
        let c = oauth_credentials("http://x", "u".into(), "e".into(), &t, Utc::now());
        assert_eq!(c.kind(), "oauth");
        assert_eq!(c.refresh_token.as_deref(), Some("dtr_rt_secret"));
        assert!(c.expires_at.unwrap() > c.issued_at.unwrap());
    }

    #[tokio::test]
    async fn missing_login_and_other_server_need_a_login() {
        let tmp = tempfile::tempdir().unwrap();
        let src = TokenSource::new(tmp.path().to_path_buf());
        assert_eq!(
            src.token("http://x").await.unwrap_err().code,
            ErrorCode::AuthRequired
        );
        credentials::save_credentials(tmp.path(), &creds(Utc::now(), 3600)).unwrap();
        assert_eq!(src.token("http://x/").await.unwrap(), "at");
        let e = src.token("http://y").await.unwrap_err();
        assert_eq!(e.code, ErrorCode::AuthRequired);
        assert!(e.message.contains("dataerai auth login"), "{}", e.message);
        // A refused PAT is final.
        let mut pat = creds(Utc::now(), 3600);
        pat.token_kind = Some("pat".into());
        credentials::save_credentials(tmp.path(), &pat).unwrap();
        let e = src.after_rejection("http://x", "at").await.unwrap_err();
        assert_eq!(e.code, ErrorCode::AuthRequired);
        // A token replaced meanwhile is simply used.
        assert_eq!(src.after_rejection("http://x", "old").await.unwrap(), "at");
    }

    #[tokio::test]
    async fn expired_refresh_token_needs_a_login_without_a_request() {
        let tmp = tempfile::tempdir().unwrap();
        let src = TokenSource::new(tmp.path().to_path_buf());
        let mut c = creds(Utc::now() - chrono::Duration::seconds(100), 10);
        // Port 9 (discard) would fail differently if a request were made.
        c.server = "http://127.0.0.1:9".into();
        c.refresh_expires_at = Some(Utc::now() - chrono::Duration::seconds(1));
        credentials::save_credentials(tmp.path(), &c).unwrap();
        let e = src.token("http://127.0.0.1:9").await.unwrap_err();
        assert_eq!(e.code, ErrorCode::AuthRequired, "{e}");
        assert!(e.message.contains("dataerai auth login"));
    }

    /// A stand-in token endpoint (unit test only): rotates `rt-N` → `rt-N+1`
    /// slowly, refuses any other refresh token, and counts the refreshes.
    async fn fake_token_endpoint() -> (String, Arc<std::sync::atomic::AtomicU32>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let count = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let n = count.clone();
        tokio::spawn(async move {
            loop {
                let (mut sock, _) = listener.accept().await.unwrap();
                let n = n.clone();
                tokio::spawn(async move {
                    let mut req = Vec::new();
                    let mut buf = [0u8; 4096];
                    // Read headers, then the body by Content-Length.
                    let body = loop {
                        let k = sock.read(&mut buf).await.unwrap();
                        req.extend_from_slice(&buf[..k]);
                        let text = String::from_utf8_lossy(&req).to_string();
                        if let Some(i) = text.find("\r\n\r\n") {
                            let len: usize = text
                                .lines()
                                .find_map(|l| {
                                    l.to_ascii_lowercase()
                                        .strip_prefix("content-length:")
                                        .map(|v| v.trim().parse().unwrap())
                                })
                                .unwrap_or(0);
                            if text.len() >= i + 4 + len {
                                break text[i + 4..i + 4 + len].to_string();
                            }
                        }
                    };
                    let current = n.load(std::sync::atomic::Ordering::SeqCst);
                    let (status, json) = if body.contains(&format!("refresh_token=rt-{current}&")) {
                        tokio::time::sleep(Duration::from_millis(150)).await;
                        let next = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                        (
                            "200 OK",
                            format!(
                                r#"{{"access_token":"at-{next}","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-{next}","scope":"read write"}}"#
                            ),
                        )
                    } else {
                        (
                            "400 Bad Request",
                            r#"{"error":"invalid_grant"}"#.to_string(),
                        )
                    };
                    let resp = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{json}",
                        json.len()
                    );
                    sock.write_all(resp.as_bytes()).await.unwrap();
                });
            }
        });
        (url, count)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_refreshes_spend_the_refresh_token_once() {
        let (url, count) = fake_token_endpoint().await;
        let tmp = tempfile::tempdir().unwrap();
        let mut c = creds(Utc::now() - chrono::Duration::seconds(100), 10);
        c.server = url.clone();
        c.token = "at-0".into();
        c.refresh_token = Some("rt-0".into());
        credentials::save_credentials(tmp.path(), &c).unwrap();
        // Two sources on one directory behave like two processes (each its own
        // lock file description), plus several tasks on each.
        let a = TokenSource::new(tmp.path().to_path_buf());
        let b = TokenSource::new(tmp.path().to_path_buf());
        let mut tasks = Vec::new();
        for i in 0..6 {
            let src = if i % 2 == 0 { a.clone() } else { b.clone() };
            let url = url.clone();
            tasks.push(tokio::spawn(async move { src.token(&url).await }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), "at-1");
        }
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 1);
        let saved = credentials::load_credentials(tmp.path()).unwrap();
        assert_eq!(saved.refresh_token.as_deref(), Some("rt-1"));
        assert!(saved.expires_at.unwrap() > Utc::now() + chrono::Duration::seconds(3000));
        // A fresh token is not refreshed again.
        assert_eq!(a.token(&url).await.unwrap(), "at-1");
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 1);
        // The server refused at-1 (say, revoked in flight): one refresh, then a new token.
        assert_eq!(a.after_rejection(&url, "at-1").await.unwrap(), "at-2");
        // A refresh token the server no longer accepts means "sign in again".
        let mut stale = credentials::load_credentials(tmp.path()).unwrap();
        stale.refresh_token = Some("rt-0".into());
        credentials::save_credentials(tmp.path(), &stale).unwrap();
        let e = b.after_rejection(&url, "at-2").await.unwrap_err();
        assert_eq!(e.code, ErrorCode::AuthRequired);
        assert!(e.message.contains("dataerai auth login"), "{}", e.message);
    }
}
