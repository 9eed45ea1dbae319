//! `dataerai-server admin …`: bootstrap straight into the metadata store
//! (SQLite or PostgreSQL, same storage flags as `serve`), no server needed.
//! Output is just the id or token, so scripts can capture it. Passwords are
//! read from standard input (`--password-stdin`), never from arguments.

use anyhow::{bail, Context};
use chrono::{Duration, Utc};
use dataerai_proto::api::OwnerType;
use dataerai_store::meta::NewToken;
use dataerai_store::{MetadataStore, StoreError};

use crate::auth::{generate_token, hash_password, hash_token, SCOPE_READ, SCOPE_WRITE};
use crate::cli::{AdminCommand, StorageArgs};
use crate::config;

/// The metadata store named by the storage flags / env / config file.
async fn open_meta(args: &StorageArgs) -> anyhow::Result<std::sync::Arc<dyn MetadataStore>> {
    let file = config::load(args)?;
    config::storage(args, &file)?.open_meta().await
}

/// Shortest password accepted.
const MIN_PASSWORD_LEN: usize = 8;

/// One line of standard input, without its line ending.
fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.chars().count() < MIN_PASSWORD_LEN {
        bail!("the password must have at least {MIN_PASSWORD_LEN} characters");
    }
    if password.len() > 1024 {
        bail!("the password must have at most 1024 bytes");
    }
    Ok(password)
}

pub async fn run(command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::CreateUser {
            storage,
            email,
            default_quota_bytes,
            password_stdin,
            admin,
        } => {
            // Read (and check) the password before creating anything.
            let password_hash = match password_stdin {
                true => Some(hash_password(read_password()?).await?),
                false => None,
            };
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
                Ok(user) => {
                    if let Some(hash) = password_hash {
                        meta.set_password(&user.user_id, &hash).await?;
                    }
                    if admin {
                        meta.set_admin(&user.user_id, true).await?;
                    }
                    println!("{}", user.user_id)
                }
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
        AdminCommand::SetPassword {
            storage,
            email,
            password_stdin: _,
        } => {
            let hash = hash_password(read_password()?).await?;
            let meta = open_meta(&storage).await?;
            let user = meta.user_by_email(email.trim()).await?.with_context(|| {
                format!("no user with email {email}; create one with `admin create-user`")
            })?;
            meta.set_password(&user.user_id, &hash).await?;
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
                (Some(p), _) => (OwnerType::Project, p),
                (None, Some(email)) => {
                    let u = meta
                        .user_by_email(email.trim())
                        .await?
                        .with_context(|| format!("no user with email {email}"))?;
                    (OwnerType::User, u.user_id)
                }
                (None, None) => bail!("give --project PROJECT_ID or --user EMAIL"),
            };
            meta.set_quota(owner_type, &owner_id, bytes)
                .await
                .with_context(|| format!("cannot set the quota of {owner_type} {owner_id}"))?;
        }
        AdminCommand::Gc {
            storage,
            dry_run,
            grace_s,
        } => {
            let file = config::load(&storage)?;
            let grace = grace_s.unwrap_or(file.gc.grace_s);
            let (meta, blobs) = config::storage(&storage, &file)?.open().await?;
            let report = crate::housekeeping::collect_garbage(
                meta.as_ref(),
                blobs.as_ref(),
                std::time::Duration::from_secs(grace),
                dry_run,
                Utc::now(),
            )
            .await
            .context("garbage collection failed")?;
            print!("{}", report.lines(dry_run));
        }
    }
    Ok(())
}
