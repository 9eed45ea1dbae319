//! The server administrator's reads and the collection listing's sorts, on
//! both backends (SQLite always; PostgreSQL when `DATAERAI_TEST_PG_URL` is
//! set, as `make test-scaleout` does): the same answers, in the same order.

use dataerai_proto::api::{Asset, OwnerType, Project, UploadFileSpec};
use serde_json::json;

use super::auth::{AuditFilter, NewAuditEvent};
use super::conformance::{project_of, scratch_pg_store};
use super::{MetadataStore, NewAsset, Window};
use crate::meta::sqlite::SqliteStore;

fn window(limit: u64, offset: u64) -> Window {
    Window { limit, offset }
}

/// An asset of project `p` in its root collection, made by `created_by`.
async fn project_asset(
    s: &dyn MetadataStore,
    p: &Project,
    created_by: &str,
    title: &str,
    record_type: Option<&str>,
) -> Asset {
    s.create_asset(NewAsset {
        record_type: record_type.map(str::to_string),
        ..NewAsset::in_root(p, created_by, title)
    })
    .await
    .unwrap()
}

async fn audit(
    s: &dyn MetadataStore,
    actor: Option<&str>,
    action: &str,
    details: serde_json::Value,
) {
    s.append_audit(NewAuditEvent {
        actor_user_id: actor.map(str::to_string),
        action: action.into(),
        target_type: Some("user".into()),
        target_id: Some("t".into()),
        details: details.as_object().unwrap().clone(),
        client_addr: None,
    })
    .await
    .unwrap();
}

/// Users paged and filtered by email (case-insensitive, literally), with the
/// last sign-in from the audit log.
pub async fn users_paged_and_filtered(s: &dyn MetadataStore) {
    let a = s.create_user("ada@lab.org", 10).await.unwrap();
    let b = s.create_user("bob@lab.org", 10).await.unwrap();
    s.create_user("cy@Other.ORG", 10).await.unwrap();
    s.create_user("d_e@lab.org", 10).await.unwrap();
    let (all, total) = s.find_users(None, window(10, 0)).await.unwrap();
    assert_eq!(total, 4);
    assert_eq!(all.len(), 4);
    assert_eq!(s.list_users().await.unwrap().len(), 4);
    let (lab, total) = s.find_users(Some("LAB.org"), window(2, 1)).await.unwrap();
    assert_eq!(total, 3);
    let emails: Vec<_> = lab.iter().map(|u| u.email.as_str()).collect();
    assert_eq!(emails, ["bob@lab.org", "d_e@lab.org"]);
    let (other, _) = s
        .find_users(Some("other.org"), window(10, 0))
        .await
        .unwrap();
    assert_eq!(other.len(), 1);
    // `_` and `%` are letters here, not wildcards.
    let (underscore, total) = s.find_users(Some("d_e"), window(10, 0)).await.unwrap();
    assert_eq!((underscore.len(), total), (1, 1));
    assert_eq!(s.find_users(Some("%"), window(10, 0)).await.unwrap().1, 0);

    assert!(all.iter().all(|u| u.last_sign_in_at.is_none()));
    audit(s, Some(&b.user_id), "auth.sign_in", json!({})).await;
    audit(s, Some(&b.user_id), "auth.sign_out", json!({})).await;
    audit(s, Some(&a.user_id), "token.created", json!({})).await;
    let (all, _) = s.find_users(None, window(10, 0)).await.unwrap();
    let last = |email: &str| {
        all.iter()
            .find(|u| u.email == email)
            .unwrap()
            .last_sign_in_at
    };
    assert!(last("bob@lab.org").is_some());
    assert!(last("ada@lab.org").is_none());
}

/// The audit log newest first, filtered by action, actor email and project.
pub async fn audit_filtered(s: &dyn MetadataStore) {
    let a = s.create_user("ada@lab.org", 10).await.unwrap();
    let b = s.create_user("bob@lab.org", 10).await.unwrap();
    audit(
        s,
        Some(&a.user_id),
        "member.added",
        json!({"project_id": "P1"}),
    )
    .await;
    audit(
        s,
        Some(&b.user_id),
        "asset.deleted",
        json!({"owner_type": "project", "owner_id": "P1"}),
    )
    .await;
    audit(
        s,
        Some(&b.user_id),
        "asset.deleted",
        json!({"owner_type": "user", "owner_id": "P1"}),
    )
    .await;
    audit(s, None, "auth.sign_in_failed", json!({"email": "x@y"})).await;
    audit(
        s,
        Some(&a.user_id),
        "member.added",
        json!({"project_id": "P2"}),
    )
    .await;
    let find = |f: AuditFilter| async move {
        let (entries, total) = s.find_audit(&f, window(2, 0)).await.unwrap();
        let actions: Vec<(String, Option<String>)> = entries
            .into_iter()
            .map(|e| (e.event.action, e.actor_email))
            .collect();
        (actions, total)
    };
    let (newest, total) = find(AuditFilter::default()).await;
    assert_eq!(total, 5);
    assert_eq!(
        newest,
        [
            ("member.added".to_string(), Some("ada@lab.org".to_string())),
            ("auth.sign_in_failed".to_string(), None),
        ]
    );
    let (_, total) = find(AuditFilter {
        action: Some("asset.deleted".into()),
        ..AuditFilter::default()
    })
    .await;
    assert_eq!(total, 2);
    let (_, total) = find(AuditFilter {
        actor_email: Some("ADA@lab.org".into()),
        ..AuditFilter::default()
    })
    .await;
    assert_eq!(total, 2);
    let (p1, total) = find(AuditFilter {
        project_id: Some("P1".into()),
        ..AuditFilter::default()
    })
    .await;
    assert_eq!(total, 2);
    assert_eq!(p1[0].0, "asset.deleted");
    assert_eq!(p1[1].0, "member.added");
    let (both, total) = find(AuditFilter {
        project_id: Some("P1".into()),
        actor_email: Some("bob@lab.org".into()),
        action: Some(" asset.deleted ".into()),
    })
    .await;
    assert_eq!((both.len(), total), (1, 1));
    // The unfiltered listing of the REST route is the same log.
    let (events, total) = s.list_audit(window(10, 0)).await.unwrap();
    assert_eq!((events.len(), total), (5, 5));
}

/// Totals over every allocation and the fullest ones first.
pub async fn storage_usage_totals(s: &dyn MetadataStore) {
    let u = s.create_user("ada@lab.org", 1000).await.unwrap();
    let p = project_of(s, "Lab", &u.user_id, 5000).await;
    let q = project_of(s, "Quiet", &u.user_id, 7000).await;
    let asset = project_asset(s, &p, &u.user_id, "t", None).await;
    let file = UploadFileSpec {
        name: "f".into(),
        size: 300,
        checksum: None,
    };
    s.create_upload(&asset.asset_id, &u.user_id, 64, &[file])
        .await
        .unwrap();
    let usage = s.storage_usage(2).await.unwrap();
    assert_eq!(usage.allocations, 3);
    assert_eq!(usage.reserved_bytes, 300);
    assert_eq!(usage.used_bytes, 0);
    assert_eq!(usage.file_count, 1);
    assert_eq!(usage.top.len(), 2);
    assert_eq!(usage.top[0].owner_type, OwnerType::Project);
    assert_eq!(usage.top[0].owner_id, p.project_id);
    assert_eq!(usage.top[0].owner_name, "Lab");
    assert_eq!(usage.top[0].allocation.quota_bytes, 5000);
    assert_eq!(usage.top[0].allocation.reserved_bytes, 300);
    let names: Vec<_> = s
        .storage_usage(10)
        .await
        .unwrap()
        .top
        .into_iter()
        .map(|a| a.owner_name)
        .collect();
    assert_eq!(names.len(), 3);
    assert!(names.contains(&"Quiet".to_string()) && names.contains(&"ada@lab.org".to_string()));
    let _ = q;
}

use super::conformance::both_backends;

both_backends!(
    users_paged_and_filtered,
    audit_filtered,
    storage_usage_totals
);

/// A collection's assets sorted by record type (`sort=type` / `-type`):
/// assets without a type last, ties newest first then by id — the same
/// order on both backends (byte order, as SQLite's BINARY collation).
pub async fn collection_sorted_by_type(s: &dyn MetadataStore) {
    use crate::search::{parse, SearchRequest, Sort, COUNT_CAP};
    let u = s.create_user("ada@lab.org", 1000).await.unwrap();
    let p = project_of(s, "Lab", &u.user_id, 5000).await;
    let mut made = Vec::new();
    for (title, record_type) in [
        ("a", Some("raw_data")),
        ("b", None),
        ("c", Some("Figure")),
        ("d", Some("figure")),
        ("e", Some("raw_data")),
        ("f", Some("analysis")),
    ] {
        let a = project_asset(s, &p, &u.user_id, title, record_type).await;
        made.push(a.title);
        // Distinct creation times, so "newest first" decides ties.
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let titles = |sort: &str| {
        let query = parse(&format!("collection:{}", p.root_collection_id)).unwrap();
        let sort = Sort::parse(Some(sort), &query).unwrap();
        let request = SearchRequest {
            query,
            sort,
            window: window(10, 0),
            facets: false,
            count_cap: COUNT_CAP,
        };
        let user = u.user_id.clone();
        async move {
            let page = s.search(&user, &request).await.unwrap();
            page.items.into_iter().map(|a| a.title).collect::<Vec<_>>()
        }
    };
    assert_eq!(made.len(), 6);
    assert_eq!(titles("type").await, ["c", "f", "d", "e", "a", "b"]);
    assert_eq!(titles("-type").await, ["e", "a", "d", "f", "c", "b"]);
}

both_backends!(collection_sorted_by_type);
