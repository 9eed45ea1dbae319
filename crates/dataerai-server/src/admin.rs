//! `dataerai-server admin …`: bootstrap straight into the metadata store
//! (SQLite or PostgreSQL, same storage flags as `serve`), no server needed.
//! Output is just the id or token, so scripts can capture it. Passwords are
//! read from standard input (`--password-stdin`), never from arguments.

use anyhow::{bail, Context};
use chrono::{Duration, Utc};
use dataerai_proto::api::OwnerType;
use dataerai_store::meta::auth::{NewAuditEvent, UserListing};
use dataerai_store::meta::{NewToken, User};
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
pub const MIN_PASSWORD_LEN: usize = 8;

/// One line of standard input, without its line ending.
fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    check_password(line.trim_end_matches(['\r', '\n']).to_string())
}

pub fn check_password(password: String) -> anyhow::Result<String> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        bail!("the password must have at least {MIN_PASSWORD_LEN} characters");
    }
    if password.len() > 1024 {
        bail!("the password must have at most 1024 bytes");
    }
    Ok(password)
}

/// The password from a prompt on the terminal (typed twice, not echoed), or
/// one line of standard input when that is not a terminal or `force_stdin`.
fn prompt_password(force_stdin: bool) -> anyhow::Result<String> {
    use std::io::IsTerminal;
    if force_stdin || !std::io::stdin().is_terminal() {
        return read_password();
    }
    let first = read_hidden("New password: ")?;
    let second = read_hidden("Repeat it: ")?;
    if first != second {
        bail!("the two passwords differ; nothing was changed");
    }
    check_password(first)
}

/// One line typed on the terminal with echo off (`stty -echo` on the
/// inherited terminal; restored afterwards, also on error).
fn read_hidden(prompt: &str) -> anyhow::Result<String> {
    use std::io::Write;
    let stty = |mode: &str| {
        std::process::Command::new("stty")
            .arg(mode)
            .stdin(std::process::Stdio::inherit())
            .status()
            .is_ok_and(|s| s.success())
    };
    eprint!("{prompt}");
    std::io::stderr().flush().ok();
    let quiet = stty("-echo");
    let mut line = String::new();
    let read = std::io::stdin().read_line(&mut line);
    if quiet {
        stty("echo");
    }
    eprintln!();
    read.context("cannot read the password from the terminal")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// The user with this email, or an error saying how to create one.
async fn user_named(meta: &dyn MetadataStore, email: &str) -> anyhow::Result<String> {
    let user = meta.user_by_email(email).await?.with_context(|| {
        format!("no user with email {email}; create one with `admin create-user` (see `admin list-users`)")
    })?;
    Ok(user.user_id)
}

/// How `list-users` names a user's state.
fn user_status(u: &UserListing) -> &'static str {
    if u.disabled_at.is_some() {
        "disabled"
    } else if u.invited {
        "invited"
    } else if !u.has_password {
        "no password"
    } else {
        "active"
    }
}

/// Who changes an account: the `admin` command (no actor, no address) or a
/// server administrator signed in to the `/admin` pages.
#[derive(Debug, Clone, Copy, Default)]
pub struct Actor<'a> {
    pub user_id: Option<&'a str>,
    pub addr: Option<&'a str>,
}

// The account rules the `admin` commands and the `/admin` pages share: one
// function per change, each checking its input and recording the change in
// the audit log (actions `user.created`, `user.password_set`,
// `user.disabled`, `user.enabled`), whoever asks.

/// Record an account change about `user_id` in the audit log.
async fn audit_user(
    meta: &dyn MetadataStore,
    actor: Actor<'_>,
    action: &str,
    user_id: &str,
    details: serde_json::Value,
) -> anyhow::Result<()> {
    let details = match details {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    meta.append_audit(NewAuditEvent {
        actor_user_id: actor.user_id.map(str::to_string),
        action: action.into(),
        target_type: Some("user".into()),
        target_id: Some(user_id.to_string()),
        details,
        client_addr: actor.addr.map(str::to_string),
    })
    .await?;
    Ok(())
}

/// Create a user (or complete an invited account) with a personal allocation
/// of `quota_bytes`, an optional web password and the admin flag. A user who
/// already exists is a `StoreError::Conflict`.
pub async fn create_user(
    meta: &dyn MetadataStore,
    actor: Actor<'_>,
    email: &str,
    quota_bytes: u64,
    password: Option<String>,
    admin: bool,
) -> anyhow::Result<User> {
    let email = email.trim();
    if email.is_empty() || !email.contains('@') || email.chars().any(char::is_whitespace) {
        bail!("{email:?} is not an email address");
    }
    // Check (and hash) the password before creating anything.
    let password_hash = match password {
        Some(p) => Some(hash_password(check_password(p)?).await?),
        None => None,
    };
    let user = match meta.create_user(email, quota_bytes).await {
        // Invited by a project admin: the account exists without a
        // password; it becomes an ordinary one now.
        Err(StoreError::Conflict(msg)) => match meta.activate_invited_user(email).await? {
            Some(user) => {
                meta.set_quota(OwnerType::User, &user.user_id, quota_bytes)
                    .await?;
                user
            }
            None => return Err(StoreError::Conflict(msg).into()),
        },
        other => other?,
    };
    if let Some(hash) = &password_hash {
        meta.set_password(&user.user_id, hash).await?;
    }
    if admin {
        meta.set_admin(&user.user_id, true).await?;
    }
    let details = serde_json::json!({
        "email": email, "admin": admin, "password_set": password_hash.is_some(),
    });
    audit_user(meta, actor, "user.created", &user.user_id, details).await?;
    Ok(user)
}

/// Set (or replace) the web sign-in password of `user_id` (`email`).
pub async fn set_password(
    meta: &dyn MetadataStore,
    actor: Actor<'_>,
    user_id: &str,
    email: &str,
    password: String,
) -> anyhow::Result<()> {
    let hash = hash_password(check_password(password)?).await?;
    meta.set_password(user_id, &hash).await?;
    let details = serde_json::json!({ "email": email });
    audit_user(meta, actor, "user.password_set", user_id, details).await
}

/// Disable or enable `user_id` (`email`). Administrators cannot disable
/// themselves (they would lock themselves out of the page that undoes it).
pub async fn set_disabled(
    meta: &dyn MetadataStore,
    actor: Actor<'_>,
    user_id: &str,
    email: &str,
    disabled: bool,
) -> anyhow::Result<()> {
    if disabled && actor.user_id == Some(user_id) {
        bail!("you cannot disable your own account; ask another administrator");
    }
    meta.set_disabled(user_id, disabled, Utc::now()).await?;
    let action = if disabled {
        "user.disabled"
    } else {
        "user.enabled"
    };
    let details = serde_json::json!({ "email": email });
    audit_user(meta, actor, action, user_id, details).await
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
            let password = match password_stdin {
                true => Some(read_password()?),
                false => None,
            };
            let default_quota_bytes = match default_quota_bytes {
                Some(q) => q,
                None => config::load(&storage)?
                    .default_quota_bytes
                    .unwrap_or(config::DEFAULT_QUOTA),
            };
            let meta = open_meta(&storage).await?;
            let created = create_user(
                meta.as_ref(),
                Actor::default(),
                &email,
                default_quota_bytes,
                password,
                admin,
            )
            .await;
            match created {
                Ok(user) => println!("{}", user.user_id),
                Err(e) => match e.downcast_ref::<StoreError>() {
                    Some(StoreError::Conflict(msg)) => {
                        bail!("{msg}; use `admin create-token` to give that user a token")
                    }
                    _ => return Err(e),
                },
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
            let user_id = user_named(meta.as_ref(), email.trim()).await?;
            if meta
                .user_auth_by_id(&user_id)
                .await?
                .is_some_and(|u| u.disabled)
            {
                bail!("{email} is disabled; `admin enable-user {email}` first");
            }
            let token = generate_token();
            meta.create_token(NewToken {
                user_id,
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
            user,
            password_stdin,
        } => {
            let meta = open_meta(&storage).await?;
            let user_id = user_named(meta.as_ref(), user.get()).await?;
            let password = prompt_password(password_stdin)?;
            set_password(
                meta.as_ref(),
                Actor::default(),
                &user_id,
                user.get(),
                password,
            )
            .await?;
            eprintln!("password of {} set", user.get());
        }
        AdminCommand::ListUsers { storage, json } => {
            let meta = open_meta(&storage).await?;
            let users = meta.list_users().await?;
            if json {
                for u in &users {
                    let line = serde_json::json!({
                        "user_id": u.user_id,
                        "email": u.email,
                        "status": user_status(u),
                        "is_admin": u.is_admin,
                        "created_at": u.created_at,
                        "disabled_at": u.disabled_at,
                    });
                    println!("{line}");
                }
            } else {
                let width = users
                    .iter()
                    .map(|u| u.email.len())
                    .max()
                    .unwrap_or(5)
                    .max(5);
                println!(
                    "{:width$}  {:36}  {:11}  ADMIN  CREATED",
                    "EMAIL", "USER_ID", "STATUS"
                );
                for u in &users {
                    println!(
                        "{:width$}  {:36}  {:11}  {:5}  {}",
                        u.email,
                        u.user_id,
                        user_status(u),
                        if u.is_admin { "yes" } else { "no" },
                        u.created_at.format("%Y-%m-%d %H:%M"),
                    );
                }
            }
        }
        AdminCommand::DisableUser { storage, user } => {
            let meta = open_meta(&storage).await?;
            let user_id = user_named(meta.as_ref(), user.get()).await?;
            set_disabled(meta.as_ref(), Actor::default(), &user_id, user.get(), true).await?;
            eprintln!(
                "{} is disabled: they cannot sign in and their tokens and sessions no longer work",
                user.get()
            );
        }
        AdminCommand::EnableUser { storage, user } => {
            let meta = open_meta(&storage).await?;
            let user_id = user_named(meta.as_ref(), user.get()).await?;
            set_disabled(meta.as_ref(), Actor::default(), &user_id, user.get(), false).await?;
            eprintln!("{} is enabled again", user.get());
        }
        AdminCommand::SetQuota {
            storage,
            project,
            user,
            bytes,
            files,
        } => {
            if bytes.is_some_and(|b| b > i64::MAX as u64) {
                bail!("--bytes is too large");
            }
            if files.is_some_and(|f| f > i64::MAX as u64) {
                bail!("--files is too large");
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
            if let Some(bytes) = bytes {
                meta.set_quota(owner_type, &owner_id, bytes)
                    .await
                    .with_context(|| format!("cannot set the quota of {owner_type} {owner_id}"))?;
            }
            if let Some(files) = files {
                meta.set_max_files(owner_type, &owner_id, files)
                    .await
                    .with_context(|| {
                        format!("cannot set the file limit of {owner_type} {owner_id}")
                    })?;
            }
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
