//! `dataerai-server admin …`: bootstrap straight into the metadata store
//! (SQLite or PostgreSQL, same storage flags as `serve`), no server needed. Output is just the id or token, so scripts can capture it.

use anyhow::{bail, Context};
use chrono::{Duration, Utc};
use dataerai_store::meta::{NewToken, OWNER_PROJECT, OWNER_USER};
use dataerai_store::{MetadataStore, StoreError};

use crate::auth::{generate_token, hash_token, SCOPE_READ, SCOPE_WRITE};
use crate::cli::{AdminCommand, StorageArgs};
use crate::config;

/// The metadata store named by the storage flags / env / config file.
async fn open_meta(args: &StorageArgs) -> anyhow::Result<std::sync::Arc<dyn MetadataStore>> {
    let file = config::load(args)?;
    config::storage(args, &file)?.open_meta().await
}

pub async fn run(command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::CreateUser {
            storage,
            email,
            default_quota_bytes,
        } => {
            let default_quota_bytes = match default_quota_bytes {
                Some(q) => q,
                None => config::load(&storage)?
                    .default_quota_bytes
                    .unwrap_or(config::DEFAULT_QUOTA),
            };
            let email = email.trim();
            if email.is_empty() || !email.contains('@') {
                bail!("{email:?} is not an email address");
            }
            let meta = open_meta(&storage).await?;
            match meta.create_user(email, default_quota_bytes).await {
                Ok(user) => println!("{}", user.user_id),
                Err(StoreError::Conflict(msg)) => {
                    bail!("{msg}; use `admin create-token` to give that user a token")
                }
                Err(e) => return Err(e.into()),
            }
        }
        AdminCommand::CreateToken {
            storage,
            email,
            scope,
            expires_in_days,
            name,
        } => {
            let scopes: Vec<String> = scope
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            if scopes.is_empty() || scopes.iter().any(|s| s != SCOPE_READ && s != SCOPE_WRITE) {
                bail!(
                    "--scope must be a comma-separated list of `read` and `write`, got {scope:?}"
                );
            }
            let meta = open_meta(&storage).await?;
            let user = meta.user_by_email(email.trim()).await?.with_context(|| {
                format!("no user with email {email}; create one with `admin create-user`")
            })?;
            let token = generate_token();
            meta.create_token(NewToken {
                user_id: user.user_id,
                name,
                token_hash: hash_token(&token),
                scopes,
                expires_at: expires_in_days.map(|d| Utc::now() + Duration::days(i64::from(d))),
            })
            .await?;
            println!("{token}");
        }
        AdminCommand::SetQuota {
            storage,
            project,
            user,
            bytes,
        } => {
            if bytes > i64::MAX as u64 {
                bail!("--bytes is too large");
            }
            let meta = open_meta(&storage).await?;
            let (owner_type, owner_id) = match (project, user) {
                (Some(p), _) => (OWNER_PROJECT, p),
                (None, Some(email)) => {
                    let u = meta
                        .user_by_email(email.trim())
                        .await?
                        .with_context(|| format!("no user with email {email}"))?;
                    (OWNER_USER, u.user_id)
                }
                (None, None) => bail!("give --project PROJECT_ID or --user EMAIL"),
            };
            meta.set_quota(owner_type, &owner_id, bytes)
                .await
                .with_context(|| format!("cannot set the quota of {owner_type} {owner_id}"))?;
        }
    }
    Ok(())
}
