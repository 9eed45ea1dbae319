//! The audit log: who signed in (or failed to), signed out, approved a device,
//! created or revoked a token, changed a project's members, deleted something.
//! Events go to the metadata store (`audit_events`), so every replica writes
//! to the one log; server admins read it at `GET /api/v1/audit`.

use dataerai_store::meta::auth::NewAuditEvent;
use serde_json::{Map, Value};

use crate::auth::Caller;
use crate::state::AppState;

/// An event a signed-in caller caused on `target` (`(type, id)`), recorded
/// with the caller as actor and their address: what almost every handler
/// records.
pub async fn by_caller(
    state: &AppState,
    caller: &Caller,
    action: &str,
    target: (&str, &str),
    details: Value,
) {
    record(
        state,
        Some(&caller.user_id),
        action,
        Some(target),
        details,
        &caller.addr,
    )
    .await
}

/// One audit event. A failure to record is logged, not answered to the
/// client: the action itself already happened.
pub async fn record(
    state: &AppState,
    actor: Option<&str>,
    action: &str,
    target: Option<(&str, &str)>,
    details: Value,
    client_addr: &str,
) {
    let details = match details {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let event = NewAuditEvent {
        actor_user_id: actor.map(str::to_string),
        action: action.to_string(),
        target_type: target.map(|t| t.0.to_string()),
        target_id: target.map(|t| t.1.to_string()),
        details,
        client_addr: Some(client_addr.to_string()),
    };
    if let Err(e) = state.meta.append_audit(event).await {
        tracing::error!(error = %e, action, "cannot write the audit log");
    }
}
