//! Server settings: one TOML file (`--config FILE` / `DATAERAI_CONFIG`) with
//! every setting, overridden by environment variables, overridden by flags.
//! clap already merges a flag over its environment variable; this module puts
//! the file underneath and the built-in defaults under that:
//!
//! flag  >  environment variable  >  config file  >  default
//!
//! The S3 section follows the same rule with the AWS variables
//! (`AWS_ENDPOINT_URL`, `AWS_REGION`, …; see `S3Settings::with_env`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use dataerai_store::{
    BlobStore, FsBlobStore, MetadataStore, PgStore, S3BlobStore, S3Settings, SqliteStore,
};
use serde::Deserialize;

use crate::cli::{ServeArgs, StorageArgs};
use crate::connections::HttpSettings;
use crate::housekeeping::{GcSettings, UploadSettings};

/// 1 TiB.
pub const DEFAULT_QUOTA: u64 = 1 << 40;
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8470";

/// The config file. Every key is optional; unknown keys are an error (a typo
/// must not silently fall back to a default).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub blob_store: Option<String>,
    pub default_quota_bytes: Option<u64>,
    pub shutdown_drain_ms: Option<u64>,
    pub access_token_ttl_s: Option<u64>,
    pub device_poll_interval_s: Option<u64>,
    pub public_url: Option<String>,
    pub max_pending_device_codes: Option<u64>,
    #[serde(default)]
    pub s3: S3Settings,
    /// Connection timeouts and cap (`connections.rs`).
    #[serde(default)]
    pub http: HttpSettings,
    /// When idle upload sessions expire (`housekeeping.rs`).
    #[serde(default)]
    pub uploads: UploadSettings,
    /// The chunk garbage collector (`housekeeping.rs`).
    #[serde(default)]
    pub gc: GcSettings,
}

impl ConfigFile {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the config file {}", path.display()))?;
        toml::from_str(&text)
            .with_context(|| format!("the config file {} is not valid", path.display()))
    }
}

/// Where metadata lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaBackend {
    Sqlite(PathBuf),
    Postgres(String),
}

/// Where blobs live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobBackend {
    Dir(PathBuf),
    S3 { url: String, settings: S3Settings },
}

/// The storage settings shared by `serve` and the admin commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storage {
    pub meta: MetaBackend,
    pub blobs: BlobBackend,
}

/// Everything `serve` needs.
#[derive(Debug)]
pub struct ServeSettings {
    pub storage: Storage,
    pub listen: SocketAddr,
    pub default_quota_bytes: u64,
    pub shutdown_drain_ms: u64,
    pub auth: crate::state::AuthSettings,
    pub http: HttpSettings,
    pub uploads: UploadSettings,
    pub gc: GcSettings,
}

/// Read the config file named by the flags (if any).
pub fn load(args: &StorageArgs) -> anyhow::Result<ConfigFile> {
    match &args.config {
        Some(path) => ConfigFile::load(path),
        None => Ok(ConfigFile::default()),
    }
}

/// Resolve the storage settings from flags/env over the file.
pub fn storage(args: &StorageArgs, file: &ConfigFile) -> anyhow::Result<Storage> {
    storage_with_env(args, file, |name| std::env::var(name).ok())
}

fn storage_with_env(
    args: &StorageArgs,
    file: &ConfigFile,
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Storage> {
    let data_dir = args.data_dir.clone().or_else(|| file.data_dir.clone());
    let need_dir = |what: &str| {
        data_dir.clone().with_context(|| {
            format!(
                "no {what}: give --data-dir (embedded SQLite and blob directory), or \
                 --database-url postgres://… and --blob-store s3://bucket/prefix \
                 (flags, DATAERAI_* environment variables or the --config file)"
            )
        })
    };
    let meta = match args.database_url.clone().or_else(|| file.database_url.clone()) {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            MetaBackend::Postgres(url)
        }
        Some(url) => bail!(
            "--database-url must be a postgres:// URL (without it, SQLite in --data-dir is used); got {:?}",
            redact(&url)
        ),
        None => MetaBackend::Sqlite(need_dir("metadata store")?.join("dataerai.db")),
    };
    let blobs = match args.blob_store.clone().or_else(|| file.blob_store.clone()) {
        Some(url) if url.starts_with("s3://") => BlobBackend::S3 {
            url,
            settings: file.s3.clone().with_env(env),
        },
        Some(url) if url.contains("://") => {
            bail!("--blob-store must be s3://bucket/prefix or a directory; got {url:?}")
        }
        Some(dir) => BlobBackend::Dir(PathBuf::from(dir)),
        None => BlobBackend::Dir(need_dir("blob store")?.join("blobs")),
    };
    Ok(Storage { meta, blobs })
}

/// Resolve every `serve` setting.
pub fn serve(args: &ServeArgs) -> anyhow::Result<ServeSettings> {
    let file = load(&args.storage)?;
    file.http.validate()?;
    file.uploads.validate()?;
    // The defaults are written once, in `AuthSettings::default()`.
    let defaults = crate::state::AuthSettings::default();
    Ok(ServeSettings {
        http: file.http.clone(),
        uploads: file.uploads.clone(),
        gc: file.gc.clone(),
        storage: storage(&args.storage, &file)?,
        listen: match args.listen.or(file.listen) {
            Some(addr) => addr,
            None => DEFAULT_LISTEN.parse().expect("valid default address"),
        },
        default_quota_bytes: args
            .default_quota_bytes
            .or(file.default_quota_bytes)
            .unwrap_or(DEFAULT_QUOTA),
        shutdown_drain_ms: args
            .shutdown_drain_ms
            .or(file.shutdown_drain_ms)
            .unwrap_or(0),
        auth: crate::state::AuthSettings {
            access_token_ttl_s: args
                .access_token_ttl_s
                .or(file.access_token_ttl_s)
                .unwrap_or(defaults.access_token_ttl_s)
                .clamp(1, 86_400 * 30),
            device_poll_interval_s: args
                .device_poll_interval_s
                .or(file.device_poll_interval_s)
                .unwrap_or(defaults.device_poll_interval_s)
                .clamp(1, 60),
            max_pending_device_codes: file
                .max_pending_device_codes
                .unwrap_or(defaults.max_pending_device_codes)
                .max(1),
            public_url: args
                .public_url
                .clone()
                .or(file.public_url.clone())
                .map(|u| u.trim_end_matches('/').to_string()),
        },
    })
}

/// A database URL without its password, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme && url[scheme + 3..at].contains(':') => {
            let user = url[scheme + 3..at].split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

impl Storage {
    /// One line for the startup log.
    pub fn describe(&self) -> String {
        let meta = match &self.meta {
            MetaBackend::Sqlite(path) => format!("sqlite {}", path.display()),
            MetaBackend::Postgres(url) => format!("postgres {}", redact(url)),
        };
        let blobs = match &self.blobs {
            BlobBackend::Dir(dir) => format!("directory {}", dir.display()),
            BlobBackend::S3 { url, settings } => {
                format!("{url} at {}", settings.endpoint.as_deref().unwrap_or("AWS"))
            }
        };
        format!("metadata: {meta}; blobs: {blobs}")
    }

    /// Open both stores (migrations run here).
    pub async fn open(&self) -> anyhow::Result<(Arc<dyn MetadataStore>, Arc<dyn BlobStore>)> {
        let meta = self.open_meta().await?;
        let blobs: Arc<dyn BlobStore> = match &self.blobs {
            BlobBackend::Dir(dir) => Arc::new(FsBlobStore::open(dir).await?),
            BlobBackend::S3 { url, settings } => Arc::new(
                S3BlobStore::open(url, settings)
                    .with_context(|| format!("cannot configure the blob store {url}"))?,
            ),
        };
        Ok((meta, blobs))
    }

    /// Only the metadata store (every admin command but `gc`, which also opens the blobs).
    pub async fn open_meta(&self) -> anyhow::Result<Arc<dyn MetadataStore>> {
        Ok(match &self.meta {
            MetaBackend::Sqlite(path) => {
                if let Some(dir) = path.parent() {
                    tokio::fs::create_dir_all(dir).await?;
                }
                Arc::new(SqliteStore::open(path).await?)
            }
            MetaBackend::Postgres(url) => Arc::new(
                PgStore::open(url)
                    .await
                    .with_context(|| format!("cannot open PostgreSQL at {}", redact(url)))?,
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(data_dir: Option<&str>, db: Option<&str>, blobs: Option<&str>) -> StorageArgs {
        StorageArgs {
            config: None,
            data_dir: data_dir.map(PathBuf::from),
            database_url: db.map(str::to_string),
            blob_store: blobs.map(str::to_string),
        }
    }

    #[test]
    fn precedence_and_defaults() {
        let file: ConfigFile = toml::from_str(
            r#"
            data_dir = "/file/dir"
            database_url = "postgres://u:secret@db/x"
            default_quota_bytes = 5
            [s3]
            endpoint = "http://file:9000"
            region = "eu"
            "#,
        )
        .unwrap();
        let no_env = |_: &str| None;
        // The file alone: PostgreSQL, blobs in the file's data dir.
        let s = storage_with_env(&args(None, None, None), &file, no_env).unwrap();
        assert_eq!(
            s.meta,
            MetaBackend::Postgres("postgres://u:secret@db/x".into())
        );
        assert_eq!(s.blobs, BlobBackend::Dir("/file/dir/blobs".into()));
        // Flags (or their env vars, merged by clap) beat the file.
        let s = storage_with_env(
            &args(Some("/flag"), Some("postgres://other/y"), Some("s3://b/p")),
            &file,
            |n| (n == "AWS_REGION").then(|| "env-region".to_string()),
        )
        .unwrap();
        assert_eq!(s.meta, MetaBackend::Postgres("postgres://other/y".into()));
        let BlobBackend::S3 { url, settings } = s.blobs else {
            panic!("expected S3")
        };
        assert_eq!(url, "s3://b/p");
        assert_eq!(settings.endpoint.as_deref(), Some("http://file:9000"));
        assert_eq!(settings.region.as_deref(), Some("env-region"));

        // Nothing at all: a clear error, not a panic.
        let err = storage_with_env(&args(None, None, None), &ConfigFile::default(), no_env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--data-dir"), "{err}");
        assert!(
            storage_with_env(&args(Some("/d"), Some("mysql://x"), None), &file, no_env).is_err()
        );
        assert!(toml::from_str::<ConfigFile>("listn = \"x\"").is_err());
        assert_eq!(redact("postgres://u:secret@db/x"), "postgres://u:***@db/x");
        assert_eq!(redact("postgres://u@db/x"), "postgres://u@db/x");
    }
}
