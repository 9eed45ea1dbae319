//! One behaviour, two backends: every scenario here takes a `&dyn
//! MetadataStore` and runs against SQLite (always) and PostgreSQL (when
//! `DATAERAI_TEST_PG_URL` names a server, as `scripts/test-backends.sh`
//! prints; each run gets a fresh database).

use serde_json::Map;

use super::*;
use crate::error::StoreError;
use crate::meta::{postgres::PgStore, sqlite::SqliteStore};
use dataerai_proto::api::{
    ContentStatus, OwnerType, ProjectRole, RelationshipDirection, UpdateAsset, UploadFileSpec,
    UploadStatus,
};

const ALL: Window = Window {
    limit: 100,
    offset: 0,
};

fn new_asset(owner: &str, alias: Option<&str>) -> NewAsset {
    NewAsset {
        title: "t".into(),
        description: None,
        alias: alias.map(str::to_string),
        tags: vec!["a".into()],
        metadata: serde_json::json!({"k": 1, "keep": true})
            .as_object()
            .unwrap()
            .clone(),
        owner_type: OwnerType::User,
        owner_id: owner.into(),
        collection_id: None,
        created_by: owner.into(),
        record_type: None,
        allocation_id: None,
    }
}

pub async fn users_tokens_projects(s: &dyn MetadataStore) {
    let u = s.create_user("a@x.org", 1000).await.unwrap();
    assert!(matches!(
        s.create_user("a@x.org", 1).await,
        Err(StoreError::Conflict(_))
    ));
    s.create_token(NewToken {
        user_id: u.user_id.clone(),
        name: "n".into(),
        token_hash: "h".into(),
        scopes: vec!["read".into()],
        expires_at: None,
    })
    .await
    .unwrap();
    let t = s.token_by_hash("h").await.unwrap().unwrap();
    assert_eq!(
        (t.email.as_str(), t.scopes.as_slice()),
        ("a@x.org", &["read".to_string()][..])
    );
    assert!(s.token_by_hash("nope").await.unwrap().is_none());

    let p = s.create_project("P", "d", &u.user_id, 500).await.unwrap();
    assert_eq!(p.role, ProjectRole::Owner);
    assert_eq!(p.allocation.quota_bytes, 500);
    let root = s
        .get_collection(&p.root_collection_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (root.project_id.as_str(), root.parent_id),
        (p.project_id.as_str(), None)
    );
    assert_eq!(s.list_projects(&u.user_id, ALL).await.unwrap().1, 1);
    s.set_quota(OwnerType::Project, &p.project_id, 7)
        .await
        .unwrap();
    assert_eq!(
        allocation_of(s, OwnerType::Project, &p.project_id)
            .await
            .quota_bytes,
        7
    );
    assert!(matches!(
        s.set_quota(OwnerType::Project, "missing", 1).await,
        Err(StoreError::NotFound(_))
    ));
    // Allocations are found by id too (`allocation_id` on upload).
    let project_allocation = allocation_of(s, OwnerType::Project, &p.project_id).await;
    assert_eq!(
        s.allocation_owner(&project_allocation.allocation_id)
            .await
            .unwrap(),
        Some((OwnerType::Project, p.project_id.clone()))
    );
    let personal = allocation_of(s, OwnerType::User, &u.user_id).await;
    assert_eq!(
        s.allocation_owner(&personal.allocation_id).await.unwrap(),
        Some((OwnerType::User, u.user_id.clone()))
    );
    assert_eq!(s.allocation_owner("missing").await.unwrap(), None);
}

/// The allocation of an owner, which must exist.
async fn allocation_of(s: &dyn MetadataStore, owner_type: OwnerType, owner_id: &str) -> Allocation {
    s.allocation(owner_type, owner_id)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no allocation of {owner_type} {owner_id}"))
}

/// `(used_bytes, reserved_bytes)` of a user's personal allocation.
async fn usage(s: &dyn MetadataStore, user_id: &str) -> (u64, u64) {
    let a = allocation_of(s, OwnerType::User, user_id).await;
    (a.used_bytes, a.reserved_bytes)
}

/// A new project `name` of user `owner` (no description).
pub(crate) async fn project_of(
    s: &dyn MetadataStore,
    name: &str,
    owner: &str,
    quota_bytes: u64,
) -> Project {
    s.create_project(name, "", owner, quota_bytes)
        .await
        .unwrap()
}

/// A new collection `name` of project `p` under `parent_id`.
async fn collection_in(
    s: &dyn MetadataStore,
    p: &Project,
    name: &str,
    parent_id: &str,
) -> Collection {
    s.create_collection(&p.project_id, name, parent_id)
        .await
        .unwrap()
}

/// A new asset of user `user_id` (see [`new_asset`]).
async fn asset_of(s: &dyn MetadataStore, user_id: &str, alias: Option<&str>) -> Asset {
    s.create_asset(new_asset(user_id, alias)).await.unwrap()
}

pub async fn assets_merge_alias_relationships(s: &dyn MetadataStore) {
    let u = s.create_user("a@x.org", 1000).await.unwrap();
    let a = asset_of(s, &u.user_id, Some("raw")).await;
    assert!(matches!(
        s.create_asset(new_asset(&u.user_id, Some("raw"))).await,
        Err(StoreError::Conflict(_))
    ));
    let b = asset_of(s, &u.user_id, None).await;
    asset_of(s, &u.user_id, None).await; // NULL aliases never collide

    let patch = UpdateAsset {
        metadata: Some(
            serde_json::json!({"k": null, "new": "v"})
                .as_object()
                .unwrap()
                .clone(),
        ),
        ..Default::default()
    };
    let a2 = s.update_asset(&a.asset_id, patch).await.unwrap();
    assert_eq!(
        serde_json::Value::Object(a2.metadata),
        serde_json::json!({"keep": true, "new": "v"})
    );

    let rel = NewRelationship {
        from_asset_id: b.asset_id.clone(),
        to_asset_id: a.asset_id.clone(),
        rel_type: "derived_from".into(),
        analysis_mode: None,
        qualifiers: Map::new(),
        created_by: u.user_id.clone(),
    };
    let r = s.create_relationship(rel.clone()).await.unwrap();
    assert_eq!(r.related_asset.id, a.asset_id);
    assert!(matches!(
        s.create_relationship(rel).await,
        Err(StoreError::RelationshipExists)
    ));
    assert_eq!(
        s.list_relationships(&b.asset_id, RelationshipSides::Out, ALL)
            .await
            .unwrap()
            .1,
        1
    );

    s.delete_asset(&a.asset_id).await.unwrap();
    assert!(s.get_asset(&a.asset_id).await.unwrap().is_none());
    assert_eq!(
        s.list_relationships(&b.asset_id, RelationshipSides::Out, ALL)
            .await
            .unwrap()
            .1,
        0
    );
}

/// Relationships from either end, and lineage walks: directions, depth,
/// type filter, cycles, truncation.
pub async fn relationships_both_ways_and_lineage(s: &dyn MetadataStore) {
    let u = s.create_user("a@x.org", 1000).await.unwrap();
    let raw = asset_of(s, &u.user_id, Some("raw")).await.asset_id;
    let fit = asset_of(s, &u.user_id, Some("fit")).await.asset_id;
    let fig = asset_of(s, &u.user_id, Some("fig")).await.asset_id;
    let cfg = asset_of(s, &u.user_id, Some("cfg")).await.asset_id;
    let link = |from: &str, to: &str, t: &str| NewRelationship {
        from_asset_id: from.to_string(),
        to_asset_id: to.to_string(),
        rel_type: t.into(),
        analysis_mode: None,
        qualifiers: Map::new(),
        created_by: u.user_id.clone(),
    };
    s.create_relationship(link(&fit, &raw, "derived_from"))
        .await
        .unwrap();
    s.create_relationship(link(&fig, &fit, "derived_from"))
        .await
        .unwrap();
    s.create_relationship(link(&fit, &cfg, "configured_by"))
        .await
        .unwrap();

    // Relationships from either end, each with the other asset.
    let (out, n) = s
        .list_relationships(&fit, RelationshipSides::Out, ALL)
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert!(out
        .iter()
        .all(|r| r.direction == RelationshipDirection::Out && r.from_asset_id == fit));
    let (inc, n) = s
        .list_relationships(&fit, RelationshipSides::In, ALL)
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(inc[0].direction, RelationshipDirection::In);
    assert_eq!(inc[0].related_asset.id, fig);
    let (both, n) = s
        .list_relationships(&fit, RelationshipSides::Both, ALL)
        .await
        .unwrap();
    assert_eq!((n, both.len()), (3, 3));
    let page = Window {
        limit: 1,
        offset: 2,
    };
    assert_eq!(
        s.list_relationships(&fit, RelationshipSides::Both, page)
            .await
            .unwrap()
            .0
            .len(),
        1
    );

    let ids = |l: &dataerai_proto::api::Lineage| {
        let mut v: Vec<(String, u32)> = l.nodes.iter().map(|n| (n.id.clone(), n.depth)).collect();
        v.sort();
        v
    };
    let sorted = |mut v: Vec<(String, u32)>| {
        v.sort();
        v
    };
    // Up from the figure: to its origins.
    let up = s
        .lineage(&fig, LineageDirection::Up, 20, &[], 100)
        .await
        .unwrap();
    assert_eq!(up.root, fig);
    assert_eq!(
        ids(&up),
        sorted(vec![
            (fig.clone(), 0),
            (fit.clone(), 1),
            (raw.clone(), 2),
            (cfg.clone(), 2)
        ])
    );
    assert_eq!(up.edges.len(), 3);
    assert!(!up.truncated);
    let node = up.nodes.iter().find(|n| n.id == raw).unwrap();
    assert_eq!(node.alias.as_deref(), Some("raw"));
    assert_eq!(node.owner_id.as_deref(), Some(u.user_id.as_str()));
    // Depth and type bound the walk.
    let near = s
        .lineage(&fig, LineageDirection::Up, 1, &[], 100)
        .await
        .unwrap();
    assert_eq!(ids(&near), sorted(vec![(fig.clone(), 0), (fit.clone(), 1)]));
    let typed = s
        .lineage(
            &fig,
            LineageDirection::Up,
            20,
            &["derived_from".to_string()],
            100,
        )
        .await
        .unwrap();
    assert_eq!(
        ids(&typed),
        sorted(vec![(fig.clone(), 0), (fit.clone(), 1), (raw.clone(), 2)])
    );
    // Down from the raw data: what was derived from it.
    let down = s
        .lineage(&raw, LineageDirection::Down, 20, &[], 100)
        .await
        .unwrap();
    assert_eq!(
        ids(&down),
        sorted(vec![(raw.clone(), 0), (fit.clone(), 1), (fig.clone(), 2)])
    );
    // Both ways from the middle.
    let mid = s
        .lineage(&fit, LineageDirection::Both, 20, &[], 100)
        .await
        .unwrap();
    assert_eq!(mid.nodes.len(), 4);
    assert_eq!(mid.edges.len(), 3);
    // Truncated at the edge limit.
    let cut = s
        .lineage(&fig, LineageDirection::Up, 20, &[], 2)
        .await
        .unwrap();
    assert!(cut.truncated);
    assert_eq!(cut.edges.len(), 2);

    // A cycle terminates; every edge once.
    s.create_relationship(link(&raw, &fig, "cites"))
        .await
        .unwrap();
    let round = s
        .lineage(&fig, LineageDirection::Up, 20, &[], 100)
        .await
        .unwrap();
    assert_eq!(round.edges.len(), 4);
    assert_eq!(round.nodes.len(), 4);
    let round = s
        .lineage(&fig, LineageDirection::Both, 20, &[], 100)
        .await
        .unwrap();
    assert_eq!(round.edges.len(), 4);
    // An asset without relationships: itself only.
    let alone = s
        .lineage(&cfg, LineageDirection::Up, 20, &[], 100)
        .await
        .unwrap();
    assert_eq!(ids(&alone), vec![(cfg.clone(), 0)]);
    assert!(alone.edges.is_empty());
}

/// What a provenance export loads for many assets at once: creators and
/// latest content, relationship qualifiers, the emails a caller may see,
/// and the relationships among a set of assets.
pub async fn provenance_export_details(s: &dyn MetadataStore) {
    let me = s.create_user("me@x.org", 1000).await.unwrap();
    let mate = s.create_user("mate@x.org", 1000).await.unwrap();
    let stranger = s.create_user("stranger@x.org", 1000).await.unwrap();
    let p = project_of(s, "P", &me.user_id, 1000).await;
    s.set_member(
        &p.project_id,
        &mate.user_id,
        ProjectRole::Member,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let raw = asset_of(s, &me.user_id, Some("raw")).await.asset_id;
    let fit = asset_of(s, &me.user_id, Some("fit")).await.asset_id;
    let other = asset_of(s, &me.user_id, Some("other")).await.asset_id;
    let up = s
        .create_upload(&raw, &me.user_id, 50, &[spec("a.bin", 10, None)])
        .await
        .unwrap();
    s.record_chunk(
        &up.upload_id,
        0,
        0,
        ChunkRecord {
            size: 10,
            hash: "h".into(),
        },
    )
    .await
    .unwrap();
    let v = s
        .complete_upload(&up.upload_id, &["blake3:ab".into()])
        .await
        .unwrap();
    let mut q = Map::new();
    q.insert("note".into(), serde_json::json!("fitted"));
    let rel = s
        .create_relationship(NewRelationship {
            from_asset_id: fit.clone(),
            to_asset_id: raw.clone(),
            rel_type: "derived_from".into(),
            analysis_mode: None,
            qualifiers: q.clone(),
            created_by: me.user_id.clone(),
        })
        .await
        .unwrap();
    s.create_relationship(NewRelationship {
        from_asset_id: other.clone(),
        to_asset_id: raw.clone(),
        rel_type: "uses".into(),
        analysis_mode: None,
        qualifiers: Map::new(),
        created_by: me.user_id.clone(),
    })
    .await
    .unwrap();

    let mut facts = s
        .asset_facts(&[raw.clone(), fit.clone(), "missing".into()])
        .await
        .unwrap();
    facts.sort_by_key(|a| a.asset_id == fit);
    assert_eq!(facts.len(), 2);
    assert_eq!(facts[0].asset_id, raw);
    assert_eq!(facts[0].created_by, me.user_id);
    let content = facts[0].content.as_ref().unwrap();
    assert_eq!(content.content_id, v.content_id);
    assert_eq!(content.files[0].checksum.as_deref(), Some("blake3:ab"));
    assert!(facts[1].content.is_none());

    let qualifiers = s
        .relationship_qualifiers(std::slice::from_ref(&rel.id))
        .await
        .unwrap();
    assert_eq!(qualifiers[&rel.id], q);

    let emails = s
        .visible_emails(
            &me.user_id,
            &[
                me.user_id.clone(),
                mate.user_id.clone(),
                stranger.user_id.clone(),
            ],
        )
        .await
        .unwrap();
    assert_eq!(emails.len(), 2);
    assert_eq!(emails[&mate.user_id], "mate@x.org");
    assert!(!emails.contains_key(&stranger.user_id));

    let among = s
        .relationships_among(&[raw.clone(), fit.clone()])
        .await
        .unwrap();
    assert_eq!(among.len(), 1);
    assert_eq!(
        (
            among[0].from_asset_id.as_str(),
            among[0].to_asset_id.as_str()
        ),
        (fit.as_str(), raw.as_str())
    );
}

pub async fn upload_lifecycle_and_quota(s: &dyn MetadataStore) {
    let u = s.create_user("a@x.org", 100).await.unwrap();
    let a = asset_of(s, &u.user_id, None).await;
    let files = vec![spec("f", 60, None)];
    let up = s
        .create_upload(&a.asset_id, &u.user_id, 50, &files)
        .await
        .unwrap();
    assert_eq!(up.files[0].chunk_count, 2);
    // 60 reserved + 60 more > 100.
    assert!(matches!(
        s.create_upload(&a.asset_id, &u.user_id, 50, &files).await,
        Err(StoreError::QuotaExceeded { reserved: 60, .. })
    ));

    let c0 = ChunkRecord {
        size: 50,
        hash: "h0".into(),
    };
    assert_eq!(
        s.record_chunk(&up.upload_id, 0, 0, c0.clone())
            .await
            .unwrap(),
        c0
    );
    // A second record keeps the first one.
    let other = ChunkRecord {
        size: 50,
        hash: "zz".into(),
    };
    assert_eq!(
        s.record_chunk(&up.upload_id, 0, 0, other).await.unwrap(),
        c0
    );
    let rec = s.get_upload(&up.upload_id).await.unwrap().unwrap();
    assert_eq!(rec.session.files[0].received_chunks, vec![0]);
    assert_eq!(rec.user_id, u.user_id);

    assert!(
        s.get_content(&a.asset_id, "latest")
            .await
            .unwrap()
            .is_none(),
        "pending is invisible"
    );
    let v = s
        .complete_upload(&up.upload_id, &["blake3:ff".into()])
        .await
        .unwrap();
    assert_eq!(v.status, ContentStatus::Complete);
    assert_eq!(v.files[0].checksum.as_deref(), Some("blake3:ff"));
    let latest = s.get_content(&a.asset_id, "latest").await.unwrap().unwrap();
    assert_eq!(
        (latest.version.content_id, latest.chunk_size),
        (v.content_id.clone(), 50)
    );
    assert!(matches!(
        s.record_chunk(&up.upload_id, 0, 1, c0.clone()).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(usage(s, &u.user_id).await, (60, 0));
    // A download names a chunk's object by the digest recorded for it.
    assert_eq!(
        s.stored_chunk_hash(&v.content_id, 0, 0).await.unwrap(),
        Some("h0".to_string())
    );
    assert_eq!(
        s.stored_chunk_hash(&v.content_id, 0, 1).await.unwrap(),
        None
    );
    assert_eq!(
        s.stored_chunk_hash("no-such-content", 0, 0).await.unwrap(),
        None
    );

    // Abort frees the reservation.
    let small = vec![spec("g", 40, None)];
    let up2 = s
        .create_upload(&a.asset_id, &u.user_id, 50, &small)
        .await
        .unwrap();
    assert_eq!(usage(s, &u.user_id).await, (60, 40));
    s.abort_upload(&up2.upload_id).await.unwrap();
    assert_eq!(usage(s, &u.user_id).await, (60, 0));
    assert!(matches!(
        s.abort_upload(&up2.upload_id).await,
        Err(StoreError::Invalid(_))
    ));

    // Quota lowered after the session opened: completion refuses.
    let up3 = s
        .create_upload(&a.asset_id, &u.user_id, 50, &small)
        .await
        .unwrap();
    s.set_quota(OwnerType::User, &u.user_id, 80).await.unwrap();
    assert!(matches!(
        s.complete_upload(&up3.upload_id, &["blake3:00".into()])
            .await,
        Err(StoreError::QuotaExceeded { .. })
    ));
}

fn spec(name: &str, size: u64, checksum: Option<&str>) -> UploadFileSpec {
    UploadFileSpec {
        name: name.into(),
        size,
        checksum: checksum.map(str::to_string),
    }
}

/// Upload one file of `size` bytes with `sum` into `asset`; answers the content id.
async fn publish(s: &dyn MetadataStore, asset: &str, user: &str, size: u64, sum: &str) -> String {
    let up = s
        .create_upload(asset, user, 50, &[spec("f", size, Some(sum))])
        .await
        .unwrap();
    s.complete_upload(&up.upload_id, &[sum.into()])
        .await
        .unwrap()
        .content_id
}

pub async fn dedup_points_at_stored_bytes_and_keeps_them_alive(s: &dyn MetadataStore) {
    let u = s.create_user("a@x.org", 10_000).await.unwrap();
    let other = s.create_user("b@x.org", 10_000).await.unwrap();
    let a = asset_of(s, &u.user_id, None).await;
    let b = asset_of(s, &u.user_id, None).await;
    let c = asset_of(s, &other.user_id, None).await;
    let sum = "blake3:aa";
    let first = publish(s, &a.asset_id, &u.user_id, 120, sum).await;

    // Same owner, same size and checksum: deduplicated, all chunks received.
    let up = s
        .create_upload(
            &b.asset_id,
            &u.user_id,
            100,
            &[spec("x", 120, Some(sum)), spec("y", 120, Some("blake3:bb"))],
        )
        .await
        .unwrap();
    assert!(up.files[0].deduplicated);
    assert_eq!(up.files[0].received_chunks, vec![0, 1]);
    assert!(!up.files[1].deduplicated);
    let rec = s.get_upload(&up.upload_id).await.unwrap().unwrap();
    assert_eq!(rec.known_checksums, vec![Some(sum.to_string()), None]);
    // A different size or another owner never matches.
    let other_size = s
        .create_upload(&b.asset_id, &u.user_id, 100, &[spec("x", 121, Some(sum))])
        .await
        .unwrap();
    assert!(!other_size.files[0].deduplicated);
    let other_owner = s
        .create_upload(
            &c.asset_id,
            &other.user_id,
            100,
            &[spec("x", 120, Some(sum))],
        )
        .await
        .unwrap();
    assert!(!other_owner.files[0].deduplicated);

    s.record_chunk(
        &up.upload_id,
        1,
        0,
        ChunkRecord {
            size: 100,
            hash: "h".into(),
        },
    )
    .await
    .unwrap();
    s.record_chunk(
        &up.upload_id,
        1,
        1,
        ChunkRecord {
            size: 20,
            hash: "h".into(),
        },
    )
    .await
    .unwrap();
    let v = s
        .complete_upload(&up.upload_id, &[sum.into(), "blake3:bb".into()])
        .await
        .unwrap();
    let rec = s
        .get_content(&b.asset_id, &v.content_id)
        .await
        .unwrap()
        .unwrap();
    let at_first = BlobLocation {
        content_id: first.clone(),
        file_index: 0,
        chunk_size: 50,
    };
    assert_eq!(rec.locations[0], at_first);
    assert_eq!(rec.locations[1].content_id, v.content_id);
    assert_eq!(rec.locations[1].chunk_size, 100);

    // A dedup of the dedup points straight at the physical bytes.
    let up3 = s
        .create_upload(&b.asset_id, &u.user_id, 1024, &[spec("z", 120, Some(sum))])
        .await
        .unwrap();
    assert!(up3.files[0].deduplicated);
    // Aborting it frees nothing that others still use.
    assert_eq!(
        s.abort_upload(&up3.upload_id).await.unwrap(),
        vec![up3.content_id.clone()]
    );

    // Deleting the original asset keeps its bytes: b points at them.
    assert_eq!(
        s.delete_asset(&a.asset_id).await.unwrap(),
        Vec::<String>::new()
    );
    let rec = s.get_content(&b.asset_id, "latest").await.unwrap().unwrap();
    assert_eq!(rec.locations[0], at_first);
    // Deleting b releases both its own chunks and the ones it pointed at.
    let mut freed = s.delete_asset(&b.asset_id).await.unwrap();
    freed.sort();
    let mut want = vec![first, v.content_id, other_size.content_id, up3.content_id];
    want.sort();
    assert_eq!(freed, want);
    assert_eq!(s.open_upload_count().await.unwrap(), 1);
    s.ping().await.unwrap();
}

/// Deleting one version frees its bytes and file count, moves "latest" back,
/// keeps bytes another version points at, and refuses the only version.
pub async fn deleting_a_version(s: &dyn MetadataStore) {
    let u = s.create_user("v@x.org", 10_000).await.unwrap();
    let a = asset_of(s, &u.user_id, None).await;
    let first = publish(s, &a.asset_id, &u.user_id, 120, "blake3:v1").await;
    let second = publish(s, &a.asset_id, &u.user_id, 30, "blake3:v2").await;
    // Same bytes as the first: deduplicated, it points at the first's blobs.
    let third = publish(s, &a.asset_id, &u.user_id, 120, "blake3:v1").await;
    assert_eq!(usage(s, &u.user_id).await, (270, 0));
    let before = allocation_of(s, OwnerType::User, &u.user_id)
        .await
        .file_count;

    // The first version's bytes stay: the third points at them.
    assert_eq!(
        s.delete_content(&a.asset_id, &first).await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(usage(s, &u.user_id).await, (150, 0));
    let after = allocation_of(s, OwnerType::User, &u.user_id)
        .await
        .file_count;
    assert_eq!(after, before - 1);
    assert!(s.get_content(&a.asset_id, &first).await.unwrap().is_none());
    let (versions, total) = s.list_contents(&a.asset_id, ALL).await.unwrap();
    assert_eq!(total, 2);
    assert_eq!(versions[0].content_id, third);

    // Deleting the newest makes the previous one latest; its pointer's target
    // (the deleted first version's bytes) is now free.
    let mut freed = s.delete_content(&a.asset_id, &third).await.unwrap();
    freed.sort();
    let mut want = vec![first.clone(), third.clone()];
    want.sort();
    assert_eq!(freed, want);
    let latest = s.get_content(&a.asset_id, "latest").await.unwrap().unwrap();
    assert_eq!(latest.version.content_id, second);
    assert_eq!(usage(s, &u.user_id).await, (30, 0));

    // The only version cannot go; an unknown or another asset's version is not found.
    assert!(matches!(
        s.delete_content(&a.asset_id, &second).await,
        Err(StoreError::Conflict(_))
    ));
    let b = asset_of(s, &u.user_id, None).await;
    assert!(matches!(
        s.delete_content(&b.asset_id, &second).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.delete_content(&a.asset_id, "nope").await,
        Err(StoreError::NotFound(_))
    ));
}

/// Concurrent sessions never reserve more than the quota together (SQLite:
/// one writer at a time; PostgreSQL: the allocation row lock), and concurrent
/// metadata merges lose no key.
pub async fn concurrent_writers_keep_quota_and_merges(s: &dyn MetadataStore) {
    let u = s.create_user("a@x.org", 100).await.unwrap();
    let a = asset_of(s, &u.user_id, None).await;
    let files = vec![spec("f", 30, None)];
    let opened = futures::future::join_all(
        (0..8).map(|_| s.create_upload(&a.asset_id, &u.user_id, 50, &files)),
    )
    .await;
    let ok = opened.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 3, "{opened:?}");
    assert!(opened
        .iter()
        .filter_map(|r| r.as_ref().err())
        .all(|e| matches!(e, StoreError::QuotaExceeded { .. })));
    let alloc = allocation_of(s, OwnerType::User, &u.user_id).await;
    assert_eq!(alloc.reserved_bytes, 90);

    let merges = (0..8).map(|i| {
        let mut m = Map::new();
        m.insert(format!("k{i}"), serde_json::json!(i));
        s.update_asset(
            &a.asset_id,
            UpdateAsset {
                metadata: Some(m),
                ..Default::default()
            },
        )
    });
    for r in futures::future::join_all(merges).await {
        r.unwrap();
    }
    let merged = s.get_asset(&a.asset_id).await.unwrap().unwrap().metadata;
    assert!(
        (0..8).all(|i| merged.contains_key(&format!("k{i}"))),
        "{merged:?}"
    );
}

fn issued(tag: &str) -> auth::IssuedTokens {
    auth::IssuedTokens {
        access_hash: format!("at-{tag}"),
        access_expires_at: chrono::Utc::now() + chrono::Duration::hours(1),
        refresh_hash: format!("rt-{tag}"),
        refresh_expires_at: chrono::Utc::now() + chrono::Duration::hours(1),
        name: "device login".into(),
    }
}

/// Sign-in state: passwords, PAT revocation, sessions, failures, device codes,
/// refresh rotation with reuse detection, members and the audit log.
pub async fn auth_device_members_audit(s: &dyn MetadataStore) {
    use auth::{DevicePoll, NewAuditEvent, NewDeviceCode, RefreshOutcome};
    // Times as milliseconds since the epoch, to read the scenario at a glance.
    let t = |ms: i64| chrono::DateTime::from_timestamp_millis(ms).unwrap();
    let u = s.create_user("a@x.org", 1000).await.unwrap();
    let v = s.create_user("b@x.org", 1000).await.unwrap();
    let ua = s.user_auth_by_email("a@x.org").await.unwrap().unwrap();
    assert!(ua.password_hash.is_none() && !ua.is_admin);
    s.set_password(&u.user_id, "$argon2id$x").await.unwrap();
    s.set_admin(&u.user_id, true).await.unwrap();
    let ua = s.user_auth_by_id(&u.user_id).await.unwrap().unwrap();
    assert_eq!(ua.password_hash.as_deref(), Some("$argon2id$x"));
    assert!(ua.is_admin);
    assert!(matches!(
        s.set_password("nobody", "x").await,
        Err(StoreError::NotFound(_))
    ));

    // PATs: listed, revocable by their owner only, revoked → unknown.
    let tid = s
        .create_token(NewToken {
            user_id: u.user_id.clone(),
            name: "laptop".into(),
            token_hash: "pat".into(),
            scopes: vec!["read".into(), "write".into()],
            expires_at: None,
        })
        .await
        .unwrap();
    let listed = s.list_tokens(&u.user_id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "laptop");
    assert!(!listed[0].revoked);
    assert!(!s.revoke_token(&v.user_id, &tid, t(1)).await.unwrap());
    assert!(s.revoke_token(&u.user_id, &tid, t(1)).await.unwrap());
    assert!(s.token_by_hash("pat").await.unwrap().is_none());
    assert!(s.list_tokens(&u.user_id).await.unwrap()[0].revoked);

    // Sessions expire.
    s.create_session("sh", &u.user_id, "csrf", t(0), t(1000))
        .await
        .unwrap();
    assert_eq!(
        s.session("sh", t(500)).await.unwrap().unwrap().csrf_token,
        "csrf"
    );
    assert!(s.session("sh", t(1000)).await.unwrap().is_none());
    s.delete_session("sh").await.unwrap();

    // Failures are counted per email and per address inside the window.
    for ms in [10, 20, 30] {
        s.record_login_failure("a@x.org", "1.2.3.4", t(ms))
            .await
            .unwrap();
    }
    s.record_login_failure("c@x.org", "1.2.3.4", t(40))
        .await
        .unwrap();
    let f = s
        .login_failures_since("a@x.org", "1.2.3.4", t(15))
        .await
        .unwrap();
    assert_eq!((f.by_email, f.by_addr), (2, 3));
    assert_eq!(f.oldest_by_email, Some(t(20)));
    s.clear_login_failures("a@x.org").await.unwrap();
    let f = s
        .login_failures_since("a@x.org", "1.2.3.4", t(0))
        .await
        .unwrap();
    assert_eq!((f.by_email, f.by_addr), (0, 1));

    // Device flow: pending, slow down, approve, issued once.
    let now = chrono::Utc::now();
    let later = |ms: i64| now + chrono::Duration::milliseconds(ms);
    let code = |hash: &str, user_code: &str| NewDeviceCode {
        device_hash: hash.into(),
        user_code: user_code.into(),
        client_id: "dataerai-cli".into(),
        scopes: vec!["read".into(), "write".into()],
        interval_s: 5,
        now,
        expires_at: later(600_000),
    };
    s.create_device_code(code("d1", "AAAA-BBBB")).await.unwrap();
    assert!(matches!(
        s.create_device_code(code("d2", "AAAA-BBBB")).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        s.poll_device("d1", now, &issued("x")).await.unwrap(),
        DevicePoll::Pending
    );
    assert_eq!(
        s.poll_device("d1", later(100), &issued("x")).await.unwrap(),
        DevicePoll::SlowDown
    );
    assert_eq!(
        s.poll_device("zz", now, &issued("x")).await.unwrap(),
        DevicePoll::Invalid
    );
    assert!(s
        .decide_device("AAAA-BBBB", &u.user_id, true, now)
        .await
        .unwrap());
    assert!(!s
        .decide_device("AAAA-BBBB", &u.user_id, false, now)
        .await
        .unwrap());
    let got = s
        .poll_device("d1", later(20_000), &issued("1"))
        .await
        .unwrap();
    assert_eq!(
        got,
        DevicePoll::Issued {
            user_id: u.user_id.clone(),
            scopes: vec!["read".into(), "write".into()]
        }
    );
    assert_eq!(
        s.poll_device("d1", later(40_000), &issued("y"))
            .await
            .unwrap(),
        DevicePoll::Invalid
    );
    assert!(s.token_by_hash("at-1").await.unwrap().is_some());
    assert!(s.token_by_hash("at-x").await.unwrap().is_none());
    // Denied and expired codes.
    s.create_device_code(code("d3", "CCCC-DDDD")).await.unwrap();
    assert!(s
        .decide_device("CCCC-DDDD", &u.user_id, false, now)
        .await
        .unwrap());
    assert_eq!(
        s.poll_device("d3", now, &issued("z")).await.unwrap(),
        DevicePoll::Denied
    );
    assert_eq!(
        s.poll_device("d3", later(600_000), &issued("z"))
            .await
            .unwrap(),
        DevicePoll::Expired
    );

    // Refresh rotation; reusing a rotated token revokes the family.
    let r = s.rotate_refresh("rt-1", now, &issued("2")).await.unwrap();
    assert!(matches!(r, RefreshOutcome::Rotated { .. }), "{r:?}");
    assert!(s.token_by_hash("at-2").await.unwrap().is_some());
    assert_eq!(
        s.rotate_refresh("rt-1", now, &issued("3")).await.unwrap(),
        RefreshOutcome::Reused
    );
    assert!(s.token_by_hash("at-1").await.unwrap().is_none());
    assert!(s.token_by_hash("at-2").await.unwrap().is_none());
    assert_eq!(
        s.rotate_refresh("rt-2", now, &issued("4")).await.unwrap(),
        RefreshOutcome::Invalid
    );
    assert_eq!(
        s.rotate_refresh("nope", now, &issued("5")).await.unwrap(),
        RefreshOutcome::Invalid
    );

    // Members: add, change, last owner protected, remove.
    let p = project_of(s, "P", &u.user_id, 10).await;
    let (m, added) = s
        .set_member(&p.project_id, &v.user_id, ProjectRole::Viewer, now)
        .await
        .unwrap();
    assert!(added);
    assert_eq!((m.email.as_str(), m.role.as_str()), ("b@x.org", "viewer"));
    let (m, added) = s
        .set_member(&p.project_id, &v.user_id, ProjectRole::Member, now)
        .await
        .unwrap();
    assert!(!added);
    assert_eq!(m.role, ProjectRole::Member);
    assert_eq!(
        s.member_role(&p.project_id, &v.user_id).await.unwrap(),
        Some(ProjectRole::Member)
    );
    assert!(matches!(
        s.set_member(&p.project_id, &u.user_id, ProjectRole::Admin, now)
            .await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        s.remove_member(&p.project_id, &u.user_id).await,
        Err(StoreError::Invalid(_))
    ));
    let (ms, total) = s.list_members(&p.project_id, ALL).await.unwrap();
    assert_eq!(total, 2);
    let owner = ms.iter().find(|m| m.user_id == u.user_id).unwrap();
    assert_eq!(owner.role, ProjectRole::Owner);
    assert!(owner.added_at.timestamp() > 0);
    s.remove_member(&p.project_id, &v.user_id).await.unwrap();
    assert!(matches!(
        s.remove_member(&p.project_id, &v.user_id).await,
        Err(StoreError::NotFound(_))
    ));

    // Audit: newest first, text round-trips unchanged.
    for action in ["first", "second'; DROP TABLE users; --"] {
        s.append_audit(NewAuditEvent {
            actor_user_id: Some(u.user_id.clone()),
            action: action.into(),
            client_addr: Some("127.0.0.1".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    let (events, total) = s.list_audit(ALL).await.unwrap();
    assert_eq!(total, 2);
    assert_eq!(events[0].action, "second'; DROP TABLE users; --");
    assert!(s.user_auth_by_email("b@x.org").await.unwrap().is_some());
}

pub async fn batches_settle_each_item_on_its_own(s: &dyn MetadataStore) {
    let u = s.create_user("a@x.org", 100).await.unwrap();
    let existing = asset_of(s, &u.user_id, Some("taken")).await;
    let item = |target, size| NewUpload {
        content_id: None,
        target,
        user_id: u.user_id.clone(),
        chunk_size: 64,
        files: vec![spec("f", size, None)],
    };
    let new = |alias: Option<&str>| UploadTarget::NewAsset(new_asset(&u.user_id, alias));
    let out = s
        .create_uploads(vec![
            item(new(None), 30),
            item(new(Some("taken")), 1),
            item(UploadTarget::Existing(existing.asset_id.clone()), 40),
            // 30 + 40 reserved: 40 more is over the quota of 100.
            item(new(Some("fresh")), 40),
            item(UploadTarget::Existing("nope".into()), 1),
        ])
        .await
        .unwrap();
    assert_eq!(out.len(), 5);
    let first = out[0].as_ref().unwrap();
    assert!(matches!(out[1], Err(StoreError::Conflict(_))));
    let third = out[2].as_ref().unwrap();
    assert_eq!(third.asset_id, existing.asset_id);
    assert!(matches!(out[3], Err(StoreError::QuotaExceeded { .. })));
    assert!(matches!(out[4], Err(StoreError::NotFound(_))));
    // A failed item left nothing behind: no asset under the alias it asked for.
    let (assets, n) = s
        .list_assets(OwnerType::User, &u.user_id, ALL)
        .await
        .unwrap();
    assert_eq!(n, 2, "{assets:?}");

    let chunk = |hash: &str, size| ChunkRecord {
        size,
        hash: hash.into(),
    };
    // Another chunk was recorded for the third session already.
    s.record_chunk(&third.upload_id, 0, 0, chunk("other", 40))
        .await
        .unwrap();
    let done = s
        .finish_small(&[
            SmallFinish {
                upload_id: first.upload_id.clone(),
                chunk: chunk("aa", 30),
            },
            SmallFinish {
                upload_id: third.upload_id.clone(),
                chunk: chunk("bb", 40),
            },
            SmallFinish {
                upload_id: "nope".into(),
                chunk: chunk("cc", 1),
            },
        ])
        .await
        .unwrap();
    let version = done[0].as_ref().unwrap();
    assert_eq!(version.content_id, first.content_id);
    assert_eq!(version.files[0].checksum.as_deref(), Some("blake3:aa"));
    assert!(matches!(done[1], Err(StoreError::Conflict(_))));
    assert!(done[2].is_err());
    let rec = s.get_upload(&first.upload_id).await.unwrap().unwrap();
    assert_eq!(rec.session.status, UploadStatus::Complete);
    let rec = s.get_upload(&third.upload_id).await.unwrap().unwrap();
    assert_eq!(rec.session.status, UploadStatus::Open);
    assert_eq!(usage(s, &u.user_id).await, (30, 40));
    // Usage follows aborts and deletions.
    s.abort_upload(&third.upload_id).await.unwrap();
    assert_eq!(usage(s, &u.user_id).await, (30, 0));
    let again = s
        .create_upload(&first.asset_id, &u.user_id, 64, &[spec("g", 5, None)])
        .await
        .unwrap();
    assert_eq!(usage(s, &u.user_id).await, (30, 5));
    s.delete_asset(&first.asset_id).await.unwrap();
    assert_eq!(usage(s, &u.user_id).await, (0, 0));
    assert!(s.get_upload(&again.upload_id).await.unwrap().is_none());
}

/// Batches over one allocation, run concurrently with each other and with
/// lone sessions (PostgreSQL: each batch locks its allocations, then its
/// sessions, in id order up front): together they never reserve more than
/// the quota or open more files than the limit, none fails as a whole (no
/// deadlock), and two finish batches listing the same sessions in opposite
/// orders complete each session once.
pub async fn concurrent_batches_keep_quota_and_never_deadlock(s: &dyn MetadataStore) {
    let u = s.create_user("a@x.org", 1000).await.unwrap();
    let user = u.user_id.as_str();
    let existing = asset_of(s, user, None).await;
    let item = |target| NewUpload {
        content_id: None,
        target,
        user_id: u.user_id.clone(),
        chunk_size: 64,
        files: vec![spec("f", 40, None)],
    };
    let batch = |n: usize| {
        let items = (0..n)
            .map(|i| match i % 3 {
                0 => item(UploadTarget::Existing(existing.asset_id.clone())),
                _ => item(UploadTarget::NewAsset(new_asset(user, None))),
            })
            .collect();
        s.create_uploads(items)
    };
    // Asked: 6 batches of 6 sessions and 4 lone ones, 40 bytes each; the
    // quota of 1,000 bytes holds 25.
    let one_file = [spec("f", 40, None)];
    let lone = || s.create_upload(&existing.asset_id, user, 64, &one_file);
    let (batches, lones) = futures::join!(
        futures::future::join_all((0..6).map(|_| batch(6))),
        futures::future::join_all((0..4).map(|_| lone())),
    );
    let mut opened: Vec<Result<UploadSession>> = Vec::new();
    for b in batches {
        opened.extend(b.expect("a batch failed as a whole"));
    }
    opened.extend(lones);
    let refused = |opened: &[Result<UploadSession>]| {
        opened
            .iter()
            .filter_map(|r| r.as_ref().err())
            .map(|e| format!("{e:?}"))
            .collect::<Vec<_>>()
    };
    let mut sessions: Vec<UploadSession> = opened
        .iter()
        .filter_map(|r| r.as_ref().ok().cloned())
        .collect();
    assert_eq!(sessions.len(), 25, "{:?}", refused(&opened));
    assert!(opened
        .iter()
        .filter_map(|r| r.as_ref().err())
        .all(|e| matches!(e, StoreError::QuotaExceeded { .. })));
    assert_eq!(counters(s, OwnerType::User, user).await, (0, 1000, 25));

    // The same for the file limit: 28 files, 12 more asked, 3 fit.
    s.set_quota(OwnerType::User, user, 100_000).await.unwrap();
    s.set_max_files(OwnerType::User, user, 28).await.unwrap();
    let batches = futures::future::join_all((0..3).map(|_| batch(4))).await;
    let mut opened = Vec::new();
    for b in batches {
        opened.extend(b.expect("a batch failed as a whole"));
    }
    sessions.extend(opened.iter().filter_map(|r| r.as_ref().ok().cloned()));
    assert_eq!(sessions.len(), 28, "{:?}", refused(&opened));
    assert_eq!(counters(s, OwnerType::User, user).await, (0, 1120, 28));

    // Two finish batches over 8 shared sessions, listed in opposite orders.
    let finish = |of: &UploadSession| SmallFinish {
        upload_id: of.upload_id.clone(),
        chunk: ChunkRecord {
            size: 40,
            hash: "cd".repeat(32),
        },
    };
    let first: Vec<SmallFinish> = sessions[..18].iter().map(finish).collect();
    let second: Vec<SmallFinish> = sessions[10..].iter().rev().map(finish).collect();
    let (a, b) = futures::join!(s.finish_small(&first), s.finish_small(&second));
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut completed = std::collections::HashMap::<&str, usize>::new();
    for (item, done) in first.iter().zip(&a).chain(second.iter().zip(&b)) {
        match done {
            Ok(v) => {
                assert_eq!(
                    v.files[0].checksum.as_deref(),
                    Some(&*format!("blake3:{}", item.chunk.hash))
                );
                *completed.entry(&item.upload_id).or_default() += 1;
            }
            Err(e) => assert!(matches!(e, StoreError::Invalid(_)), "{e:?}"),
        }
    }
    assert_eq!(completed.len(), 28, "every session completed");
    assert!(completed.values().all(|n| *n == 1), "{completed:?}");
    assert_eq!(counters(s, OwnerType::User, user).await, (1120, 0, 28));
}

/// Batches of new assets only (on PostgreSQL they write their assets and
/// index rows before they lock the allocations) racing for two quotas: each
/// owner gets exactly the sessions its quota holds, and a refused item
/// leaves no asset, search index row or collection link behind.
pub async fn concurrent_batches_of_new_assets_keep_quota_and_leave_no_refused_asset(
    s: &dyn MetadataStore,
) {
    use crate::search::{parse, SearchRequest, Sort};
    let u = s.create_user("a@x.org", 1000).await.unwrap();
    let user = u.user_id.as_str();
    let p = project_of(s, "Lab", user, 1000).await;
    let item = |owner_type, owner_id: &str, collection_id: Option<String>| NewUpload {
        content_id: None,
        target: UploadTarget::NewAsset(NewAsset {
            owner_type,
            owner_id: owner_id.to_string(),
            collection_id,
            ..new_asset(user, None)
        }),
        user_id: user.to_string(),
        chunk_size: 64,
        files: vec![spec("f", 40, None)],
    };
    // 8 batches of 8 items of 40 bytes, half the user's and half the
    // project's (in its root collection); each quota of 1,000 bytes holds 25.
    let batch = || {
        let items = (0..8)
            .map(|i| match i % 2 {
                0 => item(OwnerType::User, user, None),
                _ => item(
                    OwnerType::Project,
                    &p.project_id,
                    Some(p.root_collection_id.clone()),
                ),
            })
            .collect();
        s.create_uploads(items)
    };
    let batches = futures::future::join_all((0..8).map(|_| batch())).await;
    let mut opened = 0;
    for b in batches {
        for made in b.expect("a batch failed as a whole") {
            match made {
                Ok(_) => opened += 1,
                Err(e) => assert!(matches!(e, StoreError::QuotaExceeded { .. }), "{e:?}"),
            }
        }
    }
    assert_eq!(opened, 50);
    assert_eq!(counters(s, OwnerType::User, user).await, (0, 1000, 25));
    assert_eq!(
        counters(s, OwnerType::Project, &p.project_id).await,
        (0, 1000, 25)
    );
    let (_, user_assets) = s.list_assets(OwnerType::User, user, ALL).await.unwrap();
    let (_, project_assets) = s
        .list_assets(OwnerType::Project, &p.project_id, ALL)
        .await
        .unwrap();
    let (_, linked) = s
        .list_collection_assets(&p.root_collection_id, ALL)
        .await
        .unwrap();
    assert_eq!((user_assets, project_assets, linked), (25, 25, 25));
    let query = parse("tag:a").unwrap();
    let sort = Sort::parse(None, &query).unwrap();
    let req = SearchRequest {
        query,
        sort,
        window: ALL,
        facets: false,
        count_cap: crate::search::COUNT_CAP,
    };
    assert_eq!(s.search(user, &req).await.unwrap().total, 50);
}

/// A finish batch whose item fails a check the batched path leaves to the
/// per-item one (here: the quota, lowered after the sessions opened) answers
/// item by item, and a failed item changes nothing.
pub async fn a_refused_finish_item_fails_alone(s: &dyn MetadataStore) {
    let u = s.create_user("a@x.org", 100).await.unwrap();
    let user = u.user_id.as_str();
    let other = s.create_user("b@x.org", 100).await.unwrap();
    let item = |owner: &str, size| NewUpload {
        content_id: None,
        target: UploadTarget::NewAsset(new_asset(owner, None)),
        user_id: owner.to_string(),
        chunk_size: 64,
        files: vec![spec("f", size, None)],
    };
    let opened: Vec<UploadSession> = s
        .create_uploads(vec![item(user, 30), item(&other.user_id, 20)])
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    s.set_quota(OwnerType::User, user, 10).await.unwrap();
    let finish = |of: &UploadSession, size| SmallFinish {
        upload_id: of.upload_id.clone(),
        chunk: ChunkRecord {
            size,
            hash: "ab".repeat(32),
        },
    };
    let done = s
        .finish_small(&[finish(&opened[0], 30), finish(&opened[1], 20)])
        .await
        .unwrap();
    assert!(
        matches!(done[0], Err(StoreError::QuotaExceeded { .. })),
        "{:?}",
        done[0]
    );
    assert_eq!(done[1].as_ref().unwrap().content_id, opened[1].content_id);
    let first = s.get_upload(&opened[0].upload_id).await.unwrap().unwrap();
    assert_eq!(first.session.status, UploadStatus::Open);
    assert!(first.session.files[0].received_chunks.is_empty());
    assert_eq!(counters(s, OwnerType::User, user).await, (0, 30, 1));
    assert_eq!(
        counters(s, OwnerType::User, &other.user_id).await,
        (20, 0, 1)
    );
}

/// Finish batches sent at the same time each answer their own items, in
/// their order: a completed file, an unknown session, a session another
/// batch completes too (once only), and a quota refusal (the per-item path
/// of its batch) fail or succeed alone, and the counters stay exact.
pub async fn concurrent_finish_batches_answer_their_own_items(s: &dyn MetadataStore) {
    let u = s.create_user("a@x.org", 1_000).await.unwrap();
    let user = u.user_id.as_str();
    let shrunk = s.create_user("b@x.org", 1_000).await.unwrap();
    let item = |owner: &str| NewUpload {
        content_id: None,
        target: UploadTarget::NewAsset(new_asset(owner, None)),
        user_id: owner.to_string(),
        chunk_size: 64,
        files: vec![spec("f", 10, None)],
    };
    let opened: Vec<UploadSession> = s
        .create_uploads((0..24).map(|_| item(user)).collect())
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let refused = s
        .create_uploads(vec![item(&shrunk.user_id)])
        .await
        .unwrap()
        .remove(0)
        .unwrap();
    s.set_quota(OwnerType::User, &shrunk.user_id, 5)
        .await
        .unwrap();
    let finish = |upload_id: &str| SmallFinish {
        upload_id: upload_id.to_string(),
        chunk: ChunkRecord {
            size: 10,
            hash: "cd".repeat(32),
        },
    };
    // Eight batches of three sessions each, the first session of every
    // batch also listed by the batch before it; one unknown session in
    // batch 2, the refused one in batch 5.
    let batches: Vec<Vec<SmallFinish>> = (0..8)
        .map(|b| {
            let mut ids: Vec<String> = (0..3)
                .map(|i| opened[3 * b + i].upload_id.clone())
                .collect();
            if b < 7 {
                ids.push(opened[3 * (b + 1)].upload_id.clone());
            }
            if b == 2 {
                ids.insert(1, "no-such-upload".into());
            }
            if b == 5 {
                ids.insert(0, refused.upload_id.clone());
            }
            ids.iter().map(|id| finish(id)).collect()
        })
        .collect();
    let answers =
        futures::future::join_all(batches.iter().map(|items| s.finish_small(items))).await;
    let mut completed = std::collections::HashMap::new();
    for (items, answer) in batches.iter().zip(answers) {
        let answer = answer.unwrap();
        assert_eq!(answer.len(), items.len());
        for (item, result) in items.iter().zip(answer) {
            match item.upload_id.as_str() {
                "no-such-upload" => {
                    assert!(matches!(result, Err(StoreError::NotFound(_))), "{result:?}")
                }
                id if id == refused.upload_id => {
                    assert!(
                        matches!(result, Err(StoreError::QuotaExceeded { .. })),
                        "{result:?}"
                    )
                }
                id => {
                    let session = opened.iter().find(|o| o.upload_id == id).unwrap();
                    match result {
                        Ok(v) => {
                            assert_eq!(v.content_id, session.content_id);
                            *completed.entry(id.to_string()).or_insert(0) += 1;
                        }
                        // Listed by two batches: the other completed it.
                        Err(StoreError::Invalid(_)) => {}
                        Err(e) => panic!("{id}: {e:?}"),
                    }
                }
            }
        }
    }
    assert_eq!(completed.len(), 24, "every session completed");
    assert!(completed.values().all(|&n| n == 1), "{completed:?}");
    assert_eq!(counters(s, OwnerType::User, user).await, (240, 0, 24));
    assert_eq!(
        counters(s, OwnerType::User, &shrunk.user_id).await,
        (0, 10, 1)
    );
}

/// A batch looks up the stored bytes of all its files together: each file
/// is deduplicated exactly as in a session opened on its own (same owner,
/// size and checksum), also after an item that failed before its lookup or
/// one refused after it, and the counters hold what every session reserves.
pub async fn a_batch_dedups_each_file_as_a_lone_session_would(s: &dyn MetadataStore) {
    let u = s.create_user("a@x.org", 10_000).await.unwrap();
    let user = u.user_id.as_str();
    let other = s.create_user("b@x.org", 10_000).await.unwrap();
    let kept = asset_of(s, user, Some("kept")).await;
    let sum = "blake3:aa";
    publish(s, &kept.asset_id, user, 120, sum).await;
    let item = |owner: &str, target, files: Vec<UploadFileSpec>| NewUpload {
        content_id: None,
        target,
        user_id: owner.to_string(),
        chunk_size: 100,
        files,
    };
    let new = |owner: &str, alias: Option<&str>| UploadTarget::NewAsset(new_asset(owner, alias));
    let opened = s
        .create_uploads(vec![
            // Stored already (one of three files), not stored, no checksum.
            item(
                user,
                new(user, None),
                vec![
                    spec("x", 120, Some(sum)),
                    spec("y", 120, Some("blake3:bb")),
                    spec("z", 120, None),
                ],
            ),
            // Fails before its lookup (no such asset).
            item(
                user,
                UploadTarget::Existing("missing".into()),
                vec![spec("x", 120, Some(sum))],
            ),
            // Another owner's bytes never match.
            item(
                &other.user_id,
                new(&other.user_id, None),
                vec![spec("x", 120, Some(sum))],
            ),
            // Refused after its lookup (the alias is taken).
            item(
                user,
                new(user, Some("kept")),
                vec![spec("x", 120, Some(sum))],
            ),
            // A different size never matches; the same file again does.
            item(
                user,
                UploadTarget::Existing(kept.asset_id.clone()),
                vec![spec("x", 121, Some(sum)), spec("x2", 120, Some(sum))],
            ),
        ])
        .await
        .unwrap();
    let dedup = |i: usize| -> Vec<bool> {
        let session = opened[i].as_ref().unwrap();
        session.files.iter().map(|f| f.deduplicated).collect()
    };
    assert_eq!(dedup(0), [true, false, false]);
    assert!(
        matches!(opened[1], Err(StoreError::NotFound(_))),
        "{:?}",
        opened[1]
    );
    assert_eq!(dedup(2), [false]);
    assert!(
        matches!(opened[3], Err(StoreError::Conflict(_))),
        "{:?}",
        opened[3]
    );
    assert_eq!(dedup(4), [false, true]);
    let rec = s
        .get_upload(&opened[4].as_ref().unwrap().upload_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.known_checksums, vec![None, Some(sum.to_string())]);
    // Reserved: every byte of every opened session, deduplicated or not.
    assert_eq!(counters(s, OwnerType::User, user).await, (120, 601, 6));
    assert_eq!(
        counters(s, OwnerType::User, &other.user_id).await,
        (0, 120, 1)
    );
}

/// Search: text, phrases, fields, metadata predicates, boolean structure,
/// sorting, paging, facets and read permission give the same answers on both
/// backends.
pub async fn search_matches_the_same_assets(s: &dyn MetadataStore) {
    use crate::search::{parse, SearchRequest, Sort};
    let me = s.create_user("me@x.org", 1 << 40).await.unwrap();
    let other = s.create_user("other@x.org", 1 << 40).await.unwrap();
    let p = project_of(s, "Lab", &me.user_id, 1 << 40).await;
    let hidden = project_of(s, "Hidden", &other.user_id, 1 << 40).await;
    let sub = collection_in(s, &p, "raw", &p.root_collection_id).await;
    let deeper = collection_in(s, &p, "2026", &sub.collection_id).await;
    let mk = |title: &str, tags: &[&str], md: serde_json::Value, rt: Option<&str>| NewAsset {
        title: title.into(),
        description: Some(format!("about {title}")),
        alias: None,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        metadata: md.as_object().unwrap().clone(),
        owner_type: OwnerType::Project,
        owner_id: p.project_id.clone(),
        collection_id: None,
        created_by: me.user_id.clone(),
        record_type: rt.map(str::to_string),
        allocation_id: None,
    };
    use serde_json::json;
    let scan = s
        .create_asset(NewAsset {
            collection_id: Some(deeper.collection_id.clone()),
            ..mk("Bright field scan", &["calibrated", "tem"], json!({"voltage_kv": 200, "sample": {"name": "SrRuO3"}, "detector": {"mode": "bf"}}), Some("raw_data"))
        })
        .await
        .unwrap();
    let fit = s
        .create_asset(mk(
            "Field fit",
            &["tem"],
            json!({"voltage_kv": 80, "sample": {"name": "Si"}, "ok": true}),
            Some("analysis"),
        ))
        .await
        .unwrap();
    let figure = s
        .create_asset(mk(
            "Dark figure",
            &[],
            json!({"voltage_kv": "300", "ok": false}),
            Some("figure"),
        ))
        .await
        .unwrap();
    // Readable by nobody but `other`; matches every query below that it could.
    s.create_asset(NewAsset {
        owner_id: hidden.project_id.clone(),
        created_by: other.user_id.clone(),
        ..mk(
            "Bright field secret",
            &["calibrated", "tem"],
            json!({"voltage_kv": 200}),
            Some("raw_data"),
        )
    })
    .await
    .unwrap();
    // Files and sizes come from the latest version.
    let up = s
        .create_upload(
            &fit.asset_id,
            &me.user_id,
            1 << 20,
            &[spec("frames/frame_0001.tif", 5_000_000, None)],
        )
        .await
        .unwrap();
    s.complete_upload(&up.upload_id, &["blake3:ff".into()])
        .await
        .unwrap();

    let find = |q: &str, sort: Option<&str>| {
        let query = parse(q).unwrap();
        let sort = Sort::parse(sort, &query).unwrap();
        SearchRequest {
            query,
            sort,
            window: ALL,
            facets: true,
            count_cap: crate::search::COUNT_CAP,
        }
    };
    let titles = |q: &'static str, sort: Option<&'static str>| {
        let req = find(q, sort);
        let me = me.user_id.clone();
        async move {
            let found = s.search(&me, &req).await.unwrap();
            let (assets, total) = (found.items, found.total);
            assert_eq!(total, assets.len() as u64, "{q}");
            assert!(!found.total_is_lower_bound && !found.more, "{q}");
            let mut t: Vec<String> = assets.into_iter().map(|a| a.title).collect();
            if sort.is_none() {
                t.sort();
            }
            t
        }
    };
    let cases: &[(&str, &[&str])] = &[
        ("", &["Bright field scan", "Dark figure", "Field fit"]),
        ("field", &["Bright field scan", "Field fit"]),
        ("FIELD bright", &["Bright field scan"]),
        ("\"field scan\"", &["Bright field scan"]),
        ("\"scan field\"", &[]),
        ("frame_0001", &["Field fit"]),
        ("tag:calibrated", &["Bright field scan"]),
        ("tag:tem -tag:calibrated", &["Field fit"]),
        (
            "type:figure OR type:analysis",
            &["Dark figure", "Field fit"],
        ),
        ("md.voltage_kv>=100", &["Bright field scan"]),
        ("md.voltage_kv<100", &["Field fit"]),
        // "300" is text: numbers compare as numbers only.
        ("md.voltage_kv=\"300\"", &["Dark figure"]),
        ("md.sample.name=\"SrRuO3\"", &["Bright field scan"]),
        ("md.detector.mode:*", &["Bright field scan"]),
        ("md.ok=false", &["Dark figure"]),
        ("md.ok!=true", &["Dark figure"]),
        ("md.sample.name!=Si", &["Bright field scan"]),
        ("size>1MB", &["Field fit"]),
        ("size<1MB", &["Bright field scan", "Dark figure"]),
        (
            "owner:me",
            &["Bright field scan", "Dark figure", "Field fit"],
        ),
        ("owner:other@x.org", &[]),
        (
            "(field OR dark) NOT fit",
            &["Bright field scan", "Dark figure"],
        ),
        (
            "created>=2000-01-01 updated<2999-01-01",
            &["Bright field scan", "Dark figure", "Field fit"],
        ),
        ("created<2000-01-01", &[]),
    ];
    for (q, expected) in cases {
        assert_eq!(titles(q, None).await, *expected, "query {q}");
    }
    let project_q: &'static str = Box::leak(format!("project:{}", p.project_id).into_boxed_str());
    assert_eq!(titles(project_q, None).await.len(), 3);
    let hidden_q: &'static str =
        Box::leak(format!("project:{}", hidden.project_id).into_boxed_str());
    assert!(titles(hidden_q, None).await.is_empty());
    let in_sub: &'static str =
        Box::leak(format!("collection:{}", sub.collection_id).into_boxed_str());
    assert!(titles(in_sub, None).await.is_empty());
    let within: &'static str = Box::leak(format!("within:{}", sub.collection_id).into_boxed_str());
    assert_eq!(titles(within, None).await, ["Bright field scan"]);

    // Sorting and paging.
    assert_eq!(
        titles("", Some("title")).await,
        ["Bright field scan", "Dark figure", "Field fit"]
    );
    assert_eq!(
        titles("", Some("-title")).await,
        ["Field fit", "Dark figure", "Bright field scan"]
    );
    assert_eq!(
        titles("md.voltage_kv:*", Some("md.voltage_kv")).await,
        ["Field fit", "Bright field scan", "Dark figure"]
    );
    assert_eq!(titles("", Some("-size")).await[0], "Field fit");
    let mut req = find("", Some("title"));
    req.window = Window {
        limit: 2,
        offset: 2,
    };
    let found = s.search(&me.user_id, &req).await.unwrap();
    let (page, total, facets) = (found.items, found.total, found.facets);
    assert_eq!((page.len(), total, found.more), (1, 3, false));
    assert_eq!(page[0].title, "Field fit");
    assert_eq!(page[0].record_type.as_deref(), Some("analysis"));
    let facets = facets.unwrap();
    assert_eq!(
        facets.tags,
        vec![("tem".to_string(), 2), ("calibrated".to_string(), 1)]
    );
    assert_eq!(facets.record_types.len(), 3);
    assert_eq!(facets.projects, vec![(p.project_id.clone(), 3)]);
    // A page that is not the last says so.
    req.window = Window {
        limit: 2,
        offset: 0,
    };
    let first = s.search(&me.user_id, &req).await.unwrap();
    assert_eq!((first.items.len(), first.total, first.more), (2, 3, true));
    // Past the count cap the total is the cap and a lower bound, and the
    // facets count only the counted matches; paging goes on to the end.
    req.count_cap = 2;
    let capped = s.search(&me.user_id, &req).await.unwrap();
    assert_eq!(
        (capped.total, capped.total_is_lower_bound, capped.more),
        (2, true, true)
    );
    let counted = capped.facets.unwrap();
    assert_eq!(counted.projects, vec![(p.project_id.clone(), 2)]);
    assert_eq!(counted.record_types.iter().map(|(_, n)| n).sum::<u64>(), 2);
    req.window.offset = 2;
    let last = s.search(&me.user_id, &req).await.unwrap();
    assert_eq!(last.items.len(), 1);
    assert!(!last.more);
    assert_eq!((last.total, last.total_is_lower_bound), (3, true));
    // Exactly the cap is exact.
    req.count_cap = 3;
    let exact = s.search(&me.user_id, &req).await.unwrap();
    assert_eq!((exact.total, exact.total_is_lower_bound), (3, false));

    // The index follows changes and deletions.
    s.update_asset(
        &figure.asset_id,
        UpdateAsset {
            title: Some("Light figure".into()),
            record_type: Some("plot".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(titles("type:figure", None).await.is_empty());
    assert_eq!(titles("light type:plot", None).await, ["Light figure"]);
    // An asset without a record type is of no type: "not a plot" keeps it.
    s.create_asset(mk("Untyped note", &[], json!({}), None))
        .await
        .unwrap();
    assert_eq!(
        titles("-type:plot", None).await,
        ["Bright field scan", "Field fit", "Untyped note"]
    );
    assert_eq!(
        titles("NOT (type:plot OR type:analysis)", None).await,
        ["Bright field scan", "Untyped note"]
    );
    s.delete_asset(&scan.asset_id).await.unwrap();
    assert!(titles("tag:calibrated", None).await.is_empty());
    assert!(titles("bright", None).await.is_empty());
}

/// Invited accounts (made once, completed by an administrator), disabled
/// accounts (their tokens and sessions stop working, refresh tokens are
/// revoked), the listing of users, and the limit on merged metadata.
pub async fn invited_and_disabled_users(s: &dyn MetadataStore) {
    let known = s.create_user("known@x.org", 10).await.unwrap();
    // Inviting a known email answers that user; an unknown one is made once.
    let same = s.user_by_email_or_invite("known@x.org", 5).await.unwrap();
    assert_eq!(same.user_id, known.user_id);
    let invited = s.user_by_email_or_invite("new@x.org", 5).await.unwrap();
    let again = s.user_by_email_or_invite("new@x.org", 5).await.unwrap();
    assert_eq!(invited.user_id, again.user_id);
    assert_eq!(
        allocation_of(s, OwnerType::User, &invited.user_id)
            .await
            .quota_bytes,
        5
    );
    let status = |users: &[auth::UserListing], email: &str| {
        let u = users.iter().find(|u| u.email == email).unwrap().clone();
        (u.invited, u.has_password, u.disabled_at.is_some())
    };
    let users = s.list_users().await.unwrap();
    assert_eq!(users.len(), 2);
    assert_eq!(status(&users, "new@x.org"), (true, false, false));
    assert_eq!(status(&users, "known@x.org"), (false, false, false));
    // Only an invited account is activated, once.
    assert!(s
        .activate_invited_user("known@x.org")
        .await
        .unwrap()
        .is_none());
    let activated = s.activate_invited_user("new@x.org").await.unwrap().unwrap();
    assert_eq!(activated.user_id, invited.user_id);
    assert!(s
        .activate_invited_user("new@x.org")
        .await
        .unwrap()
        .is_none());

    // Disabling: the token lookup and sessions skip the user.
    s.set_password(&known.user_id, "hash").await.unwrap();
    s.create_token(NewToken {
        user_id: known.user_id.clone(),
        name: "n".into(),
        token_hash: "th".into(),
        scopes: vec!["read".into()],
        expires_at: None,
    })
    .await
    .unwrap();
    let now = chrono::Utc::now();
    s.create_session(
        "sh",
        &known.user_id,
        "csrf",
        now,
        now + chrono::Duration::hours(1),
    )
    .await
    .unwrap();
    s.set_disabled(&known.user_id, true, now).await.unwrap();
    assert!(s.token_by_hash("th").await.unwrap().is_none());
    assert!(s.session("sh", now).await.unwrap().is_none());
    let auth = s.user_auth_by_id(&known.user_id).await.unwrap().unwrap();
    assert!(auth.disabled);
    let users = s.list_users().await.unwrap();
    assert_eq!(status(&users, "known@x.org"), (false, true, true));
    s.set_disabled(&known.user_id, false, now).await.unwrap();
    assert!(s.token_by_hash("th").await.unwrap().is_some());
    assert!(
        !s.user_auth_by_id(&known.user_id)
            .await
            .unwrap()
            .unwrap()
            .disabled
    );
    assert!(matches!(
        s.set_disabled("nobody", true, now).await,
        Err(StoreError::NotFound(_))
    ));

    // Merged metadata stays within the limit; a refused patch changes nothing.
    let a = asset_of(s, &known.user_id, None).await;
    let big = |key: &str| UpdateAsset {
        metadata: Some(
            serde_json::json!({ key: "x".repeat(dataerai_proto::api::MAX_METADATA_BYTES / 2) })
                .as_object()
                .unwrap()
                .clone(),
        ),
        ..Default::default()
    };
    s.update_asset(&a.asset_id, big("one")).await.unwrap();
    assert!(matches!(
        s.update_asset(&a.asset_id, big("two")).await,
        Err(StoreError::Invalid(_))
    ));
    let stored = s.get_asset(&a.asset_id).await.unwrap().unwrap();
    assert!(stored.metadata.contains_key("one") && !stored.metadata.contains_key("two"));
}

/// Every file counts against the allocation's file limit, empty ones too:
/// open sessions hold their files, aborting frees them, deleting an asset
/// frees its versions' files.
pub async fn file_limit_counts_every_file(s: &dyn MetadataStore) {
    let u = s.create_user("a@x.org", 1000).await.unwrap();
    let fresh = allocation_of(s, OwnerType::User, &u.user_id).await;
    assert_eq!((fresh.file_count, fresh.max_files), (0, 1_000_000));
    s.set_max_files(OwnerType::User, &u.user_id, 3)
        .await
        .unwrap();
    let a = asset_of(s, &u.user_id, None).await;
    let empty = |n: usize| {
        (0..n)
            .map(|i| spec(&format!("e{i}"), 0, None))
            .collect::<Vec<_>>()
    };
    let two = s
        .create_upload(&a.asset_id, &u.user_id, 50, &empty(2))
        .await
        .unwrap();
    assert_eq!(
        allocation_of(s, OwnerType::User, &u.user_id)
            .await
            .file_count,
        2
    );
    assert!(matches!(
        s.create_upload(&a.asset_id, &u.user_id, 50, &empty(2))
            .await,
        Err(StoreError::FileLimitExceeded {
            max_files: 3,
            file_count: 2,
            requested: 2
        })
    ));
    s.abort_upload(&two.upload_id).await.unwrap();
    assert_eq!(
        allocation_of(s, OwnerType::User, &u.user_id)
            .await
            .file_count,
        0
    );
    let three = s
        .create_upload(&a.asset_id, &u.user_id, 50, &empty(3))
        .await
        .unwrap();
    let sums = vec![format!("blake3:{}", blake3::hash(b"").to_hex()); 3];
    s.complete_upload(&three.upload_id, &sums).await.unwrap();
    assert_eq!(
        allocation_of(s, OwnerType::User, &u.user_id)
            .await
            .file_count,
        3
    );
    let b = asset_of(s, &u.user_id, None).await;
    assert!(matches!(
        s.create_upload(&b.asset_id, &u.user_id, 50, &empty(1))
            .await,
        Err(StoreError::FileLimitExceeded { .. })
    ));
    s.delete_asset(&a.asset_id).await.unwrap();
    assert_eq!(
        allocation_of(s, OwnerType::User, &u.user_id)
            .await
            .file_count,
        0
    );
    s.create_upload(&b.asset_id, &u.user_id, 50, &empty(1))
        .await
        .unwrap();
}

/// Run `scenario` on a fresh SQLite store and, when configured, a fresh
/// PostgreSQL database.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                let dir = tempfile::tempdir().unwrap();
                let s = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
                super::$name(&s).await;
            }

            #[tokio::test]
            #[ignore = "needs PostgreSQL: run by make test-scaleout"]
            async fn postgres() {
                let Some(s) = scratch_pg_store().await else {
                    return;
                };
                super::$name(&s).await;
            }
        }
    )*};
}
/// The same test, once per backend (also used by `admin_conformance`).
pub(crate) use both_backends;

/// Collections as a tree: sibling names, rename, move (not into the own
/// subtree, not across projects, never the root), delete only when empty,
/// moving assets, and resolving a path — concurrently, to the same ids.
pub async fn collection_tree(s: &dyn MetadataStore) {
    let u = s.create_user("a@x.org", 1000).await.unwrap();
    let v = s.create_user("v@x.org", 1000).await.unwrap();
    let p = project_of(s, "Lab", &u.user_id, 500).await;
    let q = project_of(s, "Other", &u.user_id, 500).await;
    let root = p.root_collection_id.clone();
    let new = |parent: &str, name: &str| NewCollection {
        project_id: p.project_id.clone(),
        parent_id: parent.to_string(),
        name: name.to_string(),
        description: format!("about {name}"),
    };
    let raw = s.create_child_collection(new(&root, "raw")).await.unwrap();
    assert_eq!(raw.description, "about raw");
    let day = s
        .create_child_collection(new(&raw.collection_id, "2026-12-06"))
        .await
        .unwrap();
    // Sibling names are unique and case-sensitive; the conflict names the sibling.
    match s.create_child_collection(new(&root, "raw")).await {
        Err(StoreError::Conflict(m)) => assert!(m.contains(&raw.collection_id), "{m}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    let upper = s.create_child_collection(new(&root, "RAW")).await.unwrap();
    // The same name under another parent is fine.
    s.create_child_collection(new(&raw.collection_id, "RAW"))
        .await
        .unwrap();

    let (kids, total) = s.collection_children(&root, ALL).await.unwrap();
    assert_eq!(total, 2);
    let names: Vec<&str> = kids.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["raw", "RAW"]);
    assert_eq!(kids[0].child_count, 2);
    assert_eq!(s.list_collections(&p.project_id, ALL).await.unwrap().1, 5);

    // Rename; a taken name is a conflict; the root is never renamed or moved.
    let renamed = s
        .update_collection(&upper.collection_id, Some("processed"), None)
        .await
        .unwrap();
    assert_eq!(renamed.name, "processed");
    assert!(matches!(
        s.update_collection(&upper.collection_id, Some("raw"), None)
            .await,
        Err(StoreError::Conflict(_))
    ));
    for (name, parent) in [(Some("x"), None), (None, Some(raw.collection_id.as_str()))] {
        assert!(matches!(
            s.update_collection(&root, name, parent).await,
            Err(StoreError::Invalid(_))
        ));
    }
    // Move: not into itself or its subtree, not into another project.
    for target in [&raw.collection_id, &day.collection_id] {
        assert!(matches!(
            s.update_collection(&raw.collection_id, None, Some(target))
                .await,
            Err(StoreError::Invalid(_))
        ));
    }
    assert!(matches!(
        s.update_collection(&day.collection_id, None, Some(&q.root_collection_id))
            .await,
        Err(StoreError::Invalid(_))
    ));
    let moved = s
        .update_collection(&day.collection_id, None, Some(&upper.collection_id))
        .await
        .unwrap();
    assert_eq!(
        moved.parent_id.as_deref(),
        Some(upper.collection_id.as_str())
    );

    // Assets: filed in one collection, moved within the project only.
    let asset = s
        .create_asset(NewAsset {
            owner_type: OwnerType::Project,
            owner_id: p.project_id.clone(),
            collection_id: Some(day.collection_id.clone()),
            ..new_asset(&u.user_id, None)
        })
        .await
        .unwrap();
    s.move_asset_to_collection(&asset.asset_id, &raw.collection_id)
        .await
        .unwrap();
    let a = s.get_asset(&asset.asset_id).await.unwrap().unwrap();
    assert_eq!(a.collection_ids, vec![raw.collection_id.clone()]);
    assert!(matches!(
        s.move_asset_to_collection(&asset.asset_id, &q.root_collection_id)
            .await,
        Err(StoreError::Invalid(_))
    ));
    let personal = asset_of(s, &u.user_id, None).await;
    assert!(matches!(
        s.move_asset_to_collection(&personal.asset_id, &raw.collection_id)
            .await,
        Err(StoreError::Invalid(_))
    ));

    // Delete only when empty; the root never.
    match s.delete_collection(&raw.collection_id).await {
        Err(StoreError::Conflict(m)) => {
            assert!(m.contains("1 collection(s) and 1 asset(s)"), "{m}")
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(matches!(
        s.delete_collection(&root).await,
        Err(StoreError::Invalid(_))
    ));
    s.delete_collection(&day.collection_id).await.unwrap();
    assert!(s
        .get_collection(&day.collection_id)
        .await
        .unwrap()
        .is_none());

    // Paths: resolve, create, refuse.
    let path = |user: &str, segments: &[&str], create_project: bool| EnsurePath {
        user_id: user.to_string(),
        segments: segments.iter().map(|s| s.to_string()).collect(),
        create_project,
        project_quota_bytes: 100,
        may_create: ProjectRole::may_write,
    };
    match s
        .ensure_collection_path(path(&u.user_id, &["Lab", "raw"], false))
        .await
        .unwrap()
    {
        Ensured::Resolved {
            collection_id,
            created,
            ..
        } => assert_eq!((collection_id, created), (raw.collection_id.clone(), false)),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        s.ensure_collection_path(path(&v.user_id, &["Lab"], false))
            .await
            .unwrap(),
        Ensured::NoProject
    );
    // A viewer resolves what exists but creates nothing.
    s.set_member(
        &p.project_id,
        &v.user_id,
        ProjectRole::Viewer,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(
        s.ensure_collection_path(path(&v.user_id, &["Lab", "raw", "new"], false))
            .await
            .unwrap(),
        Ensured::MayNotCreate {
            project_id: p.project_id.clone(),
            segment: "new".into()
        }
    );
    assert_eq!(
        s.collection_children(&raw.collection_id, ALL)
            .await
            .unwrap()
            .1,
        1
    );
    // Concurrent ensures of one new path (new project included) agree.
    let runs =
        (0..4).map(|_| s.ensure_collection_path(path(&v.user_id, &["Fresh", "a", "b"], true)));
    let results = futures::future::join_all(runs).await;
    let first = results[0].as_ref().unwrap().clone();
    let Ensured::Resolved { project_id, .. } = &first else {
        panic!("{first:?}")
    };
    for r in &results {
        let Ensured::Resolved {
            project_id: pid,
            collection_id,
            ..
        } = r.as_ref().unwrap()
        else {
            panic!("{r:?}")
        };
        let Ensured::Resolved {
            collection_id: first_id,
            ..
        } = &first
        else {
            unreachable!()
        };
        assert_eq!((pid, collection_id), (project_id, first_id));
    }
    assert_eq!(s.list_collections(project_id, ALL).await.unwrap().1, 3);
    // Two projects of one name: ambiguous.
    project_of(s, "Fresh", &v.user_id, 1).await;
    assert!(matches!(
        s.ensure_collection_path(path(&v.user_id, &["Fresh"], false))
            .await
            .unwrap(),
        Ensured::SeveralProjects(ids) if ids.len() == 2
    ));
}

pub async fn idle_sessions_expire_and_leave_unreferenced_contents(s: &dyn MetadataStore) {
    let u = s.create_user("a@x.org", 1_000).await.unwrap();
    let later = |secs| chrono::Utc::now() + chrono::Duration::seconds(secs);
    // A session on an asset created for it, with one chunk received.
    let fresh = asset_of(s, &u.user_id, None).await;
    let up1 = s
        .create_upload(&fresh.asset_id, &u.user_id, 50, &[spec("f", 100, None)])
        .await
        .unwrap();
    let chunk = ChunkRecord {
        size: 50,
        hash: "0".repeat(64),
    };
    s.record_chunk(&up1.upload_id, 0, 0, chunk).await.unwrap();
    assert_eq!(usage(s, &u.user_id).await, (0, 100));
    // Not idle yet before its last activity; idle by a later cutoff.
    let before = up1.created_at - chrono::Duration::seconds(1);
    assert!(s.idle_uploads(before, 10).await.unwrap().is_empty());
    assert_eq!(s.expire_upload(&up1.upload_id, before).await.unwrap(), None);
    assert_eq!(
        s.idle_uploads(later(1), 10).await.unwrap(),
        vec![up1.upload_id.clone()]
    );
    let expired = s.expire_upload(&up1.upload_id, later(1)).await.unwrap();
    assert_eq!(
        expired,
        Some(ExpiredUpload {
            upload_id: up1.upload_id.clone(),
            asset_id: fresh.asset_id.clone(),
            asset_deleted: true,
        })
    );
    // Once only; the empty asset went with it, and the reservation.
    assert_eq!(
        s.expire_upload(&up1.upload_id, later(1)).await.unwrap(),
        None
    );
    assert!(s.get_asset(&fresh.asset_id).await.unwrap().is_none());
    assert!(s.get_upload(&up1.upload_id).await.unwrap().is_none());
    assert_eq!(usage(s, &u.user_id).await, (0, 0));

    // On an asset with a published version: the session closes, the asset stays.
    let kept = asset_of(s, &u.user_id, None).await;
    let sum = format!("blake3:{}", "1".repeat(64));
    let live = publish(s, &kept.asset_id, &u.user_id, 10, &sum).await;
    let up2 = s
        .create_upload(&kept.asset_id, &u.user_id, 50, &[spec("g", 20, None)])
        .await
        .unwrap();
    let up3 = s
        .create_upload(&kept.asset_id, &u.user_id, 50, &[spec("h", 30, None)])
        .await
        .unwrap();
    // Activity moves a session past the cutoff.
    s.touch_upload(&up3.upload_id, later(10)).await.unwrap();
    assert_eq!(
        s.idle_uploads(later(5), 10).await.unwrap(),
        vec![up2.upload_id.clone()]
    );
    let expired = s.expire_upload(&up2.upload_id, later(5)).await.unwrap();
    assert!(!expired.unwrap().asset_deleted);
    assert_eq!(
        s.expire_upload(&up3.upload_id, later(5)).await.unwrap(),
        None
    );
    let record = s.get_upload(&up2.upload_id).await.unwrap().unwrap();
    assert_eq!(record.session.status, UploadStatus::Aborted);
    assert_eq!(record.closed_reason, Some(CloseReason::Expired));
    assert_eq!(usage(s, &u.user_id).await, (10, 30));

    // The expired session's content id is garbage; the published one and the
    // open session's are not; an id the store never knew is.
    let unknown = "00000000-0000-0000-0000-000000000000".to_string();
    let mut found = s
        .unreferenced_contents(vec![
            up2.content_id.clone(),
            live,
            up3.content_id.clone(),
            unknown.clone(),
        ])
        .await
        .unwrap();
    found.sort();
    let mut expected = vec![up2.content_id, unknown];
    expected.sort();
    assert_eq!(found, expected);
}

/// `(used_bytes, reserved_bytes, file_count)` of an owner's allocation.
async fn counters(s: &dyn MetadataStore, owner_type: OwnerType, owner_id: &str) -> (u64, u64, u64) {
    let a = allocation_of(s, owner_type, owner_id).await;
    (a.used_bytes, a.reserved_bytes, a.file_count)
}

/// An asset charged to an allocation other than its owner's (a personal
/// asset on a project's allocation): every version counts there and not in
/// the owner's, is held to that allocation's quota (also when sessions of
/// several owners race), and gives its bytes back there when a version or
/// the asset goes; dedup and garbage collection stay per owner, as before.
pub async fn asset_charged_to_another_allocation(s: &dyn MetadataStore) {
    let u = s.create_user("c@x.org", 1_000).await.unwrap();
    let p = project_of(s, "Shared", &u.user_id, 500).await;
    let pid = p.project_id.as_str();
    let on_project = Some(p.allocation.allocation_id.clone());
    let charged = |user: &str| NewAsset {
        allocation_id: on_project.clone(),
        ..new_asset(user, None)
    };
    let a = s.create_asset(charged(&u.user_id)).await.unwrap();
    assert_eq!(a.allocation_id, on_project);
    let read = s.get_asset(&a.asset_id).await.unwrap().unwrap();
    assert_eq!(read.allocation_id, on_project);
    // The owner's own allocation named explicitly is the default (`None`);
    // an unknown one is not found.
    let personal = allocation_of(s, OwnerType::User, &u.user_id).await;
    let own = s
        .create_asset(NewAsset {
            allocation_id: Some(personal.allocation_id.clone()),
            ..new_asset(&u.user_id, None)
        })
        .await
        .unwrap();
    assert_eq!(own.allocation_id, None);
    assert!(matches!(
        s.create_asset(NewAsset {
            allocation_id: Some("missing".into()),
            ..new_asset(&u.user_id, None)
        })
        .await,
        Err(StoreError::NotFound(_))
    ));

    // Reserved, then used, on the project's allocation only.
    let up = s
        .create_upload(&a.asset_id, &u.user_id, 50, &[spec("f", 100, None)])
        .await
        .unwrap();
    assert_eq!(counters(s, OwnerType::Project, pid).await, (0, 100, 1));
    assert_eq!(counters(s, OwnerType::User, &u.user_id).await, (0, 0, 0));
    let first = s
        .complete_upload(&up.upload_id, &["blake3:c1".into()])
        .await
        .unwrap()
        .content_id;
    assert_eq!(counters(s, OwnerType::Project, pid).await, (100, 0, 1));
    assert_eq!(counters(s, OwnerType::User, &u.user_id).await, (0, 0, 0));

    // The project's quota holds (100 + 450 > 500) though the personal one
    // has room; the owner's own asset still uses the personal one.
    assert!(matches!(
        s.create_upload(&a.asset_id, &u.user_id, 50, &[spec("g", 450, None)])
            .await,
        Err(StoreError::QuotaExceeded {
            quota: 500,
            used: 100,
            ..
        })
    ));
    let mine = s
        .create_upload(&own.asset_id, &u.user_id, 50, &[spec("g", 450, None)])
        .await
        .unwrap();
    assert_eq!(counters(s, OwnerType::User, &u.user_id).await, (0, 450, 1));
    s.abort_upload(&mine.upload_id).await.unwrap();

    // A later version keeps charging the project; completion checks its
    // quota again.
    let second = publish(s, &a.asset_id, &u.user_id, 200, "blake3:c2").await;
    assert_eq!(counters(s, OwnerType::Project, pid).await, (300, 0, 2));
    let late = s
        .create_upload(&a.asset_id, &u.user_id, 50, &[spec("h", 100, None)])
        .await
        .unwrap();
    s.set_quota(OwnerType::Project, pid, 350).await.unwrap();
    assert!(matches!(
        s.complete_upload(&late.upload_id, &["blake3:c3".into()])
            .await,
        Err(StoreError::QuotaExceeded { quota: 350, .. })
    ));
    s.abort_upload(&late.upload_id).await.unwrap();
    assert_eq!(counters(s, OwnerType::Project, pid).await, (300, 0, 2));
    s.set_quota(OwnerType::Project, pid, 500).await.unwrap();

    // Deleting a version gives its bytes back to the project.
    s.delete_content(&a.asset_id, &first).await.unwrap();
    assert_eq!(counters(s, OwnerType::Project, pid).await, (200, 0, 1));
    assert_eq!(counters(s, OwnerType::User, &u.user_id).await, (0, 0, 0));

    // Dedup is per owner: the owner's other asset reuses the bytes of the
    // project-charged one, and is charged to the personal allocation.
    let b = asset_of(s, &u.user_id, None).await;
    let up = s
        .create_upload(
            &b.asset_id,
            &u.user_id,
            50,
            &[spec("f", 200, Some("blake3:c2"))],
        )
        .await
        .unwrap();
    assert!(up.files[0].deduplicated);
    s.complete_upload(&up.upload_id, &["blake3:c2".into()])
        .await
        .unwrap();
    assert_eq!(counters(s, OwnerType::User, &u.user_id).await, (200, 0, 1));

    // Deleting the asset gives the rest back to the project; its published
    // bytes stay referenced (by `b`'s pointer), so only the aborted
    // session's are garbage.
    assert_eq!(
        s.delete_asset(&a.asset_id).await.unwrap(),
        vec![late.content_id.clone()]
    );
    assert_eq!(counters(s, OwnerType::Project, pid).await, (0, 0, 0));
    assert_eq!(counters(s, OwnerType::User, &u.user_id).await, (200, 0, 1));
    assert!(s
        .unreferenced_contents(vec![second.clone()])
        .await
        .unwrap()
        .is_empty());
    s.delete_asset(&b.asset_id).await.unwrap();
    assert_eq!(counters(s, OwnerType::User, &u.user_id).await, (0, 0, 0));
    assert_eq!(
        s.unreferenced_contents(vec![second.clone()]).await.unwrap(),
        vec![second]
    );

    // Sessions of several owners on one charged allocation never reserve
    // more than its quota together (PostgreSQL: its row lock).
    let mut assets = Vec::new();
    for i in 0..8 {
        let user = s.create_user(&format!("r{i}@x.org"), 1_000).await.unwrap();
        let asset = s.create_asset(charged(&user.user_id)).await.unwrap();
        assets.push((user.user_id, asset.asset_id));
    }
    let files = [spec("f", 100, None)];
    let opened = futures::future::join_all(
        assets
            .iter()
            .map(|(user, asset)| s.create_upload(asset, user, 50, &files)),
    )
    .await;
    assert_eq!(opened.iter().filter(|r| r.is_ok()).count(), 5, "{opened:?}");
    assert_eq!(counters(s, OwnerType::Project, pid).await, (0, 500, 5));

    // Removing a member aborts their sessions charged to the project too.
    let (user, _) = opened
        .iter()
        .zip(&assets)
        .find_map(|(r, a)| r.is_ok().then_some(a))
        .unwrap();
    assert_eq!(s.abort_member_uploads(pid, user).await.unwrap(), 1);
    assert_eq!(counters(s, OwnerType::Project, pid).await, (0, 400, 4));
}

/// The URL of a new, uniquely named database (`{prefix}_{uuid}`) on the test
/// PostgreSQL server. Without that server: `None` (skip) when run by hand, a
/// failure in the scale-out stage (`DATAERAI_REQUIRE_SCALEOUT=1`).
pub(crate) fn scratch_pg_url(prefix: &str) -> Option<String> {
    let server = dataerai_testkit::scaleout_var("DATAERAI_TEST_PG_URL")?;
    Some(format!(
        "{server}/{prefix}_{}",
        uuid::Uuid::new_v4().simple()
    ))
}

/// A store on a new scratch database (see [`scratch_pg_url`]), migrated.
pub(crate) async fn scratch_pg_store() -> Option<PgStore> {
    let url = scratch_pg_url("unit")?;
    Some(PgStore::open(&url).await.unwrap())
}

/// A lone small file in one transaction: published, found by its key, the
/// key made once; the same bytes again are deduplicated; a refused one
/// (quota) makes nothing and leaves its key free, and so does one whose bytes
/// could not be stored (the commit waits for them).
pub async fn single_upload_is_keyed_and_atomic(s: &dyn MetadataStore) {
    let u = s.create_user("a@x.org", 1000).await.unwrap();
    let hash = "ab".repeat(32);
    let item = |key: &str, size: u64| SingleUploadItem {
        key: key.into(),
        upload: NewUpload {
            content_id: Some(new_content_id()),
            target: UploadTarget::NewAsset(new_asset(&u.user_id, None)),
            user_id: u.user_id.clone(),
            chunk_size: 1024 * 1024,
            files: vec![spec("f", size, Some(&format!("blake3:{hash}")))],
        },
        chunk: ChunkRecord {
            size,
            hash: hash.clone(),
        },
    };
    let first = item("k1", 100);
    let content_id = first.upload.content_id.clone().unwrap();
    let done = s.single_upload(first, stored_ok()).await.unwrap();
    assert!(!done.repeated && !done.deduplicated);
    assert_eq!(done.version.content_id, content_id);
    assert_eq!(done.version.status, ContentStatus::Complete);
    assert_eq!(
        done.version.files[0].checksum.as_deref(),
        Some(format!("blake3:{hash}").as_str())
    );
    // Counted used at once, never reserved.
    assert_eq!(counters(s, OwnerType::User, &u.user_id).await, (100, 0, 1));
    let again = s.single_upload(item("k1", 100), stored_ok()).await.unwrap();
    assert!(again.repeated);
    assert_eq!(again.upload_id, done.upload_id);
    assert_eq!(again.version.content_id, content_id);
    let found = s.single_upload_by_key(&u.user_id, "k1").await.unwrap();
    assert_eq!(found.unwrap().upload_id, done.upload_id);
    assert!(s
        .single_upload_by_key(&u.user_id, "none")
        .await
        .unwrap()
        .is_none());
    let dup = s.single_upload(item("k2", 100), stored_ok()).await.unwrap();
    assert!(dup.deduplicated && !dup.repeated);
    assert_ne!(dup.version.asset_id, done.version.asset_id);
    assert_eq!(counters(s, OwnerType::User, &u.user_id).await, (200, 0, 2));
    let refused = s.single_upload(item("k3", 2000), stored_ok()).await;
    assert!(
        matches!(refused, Err(StoreError::QuotaExceeded { .. })),
        "{refused:?}"
    );
    assert_eq!(counters(s, OwnerType::User, &u.user_id).await, (200, 0, 2));
    assert!(s
        .single_upload_by_key(&u.user_id, "k3")
        .await
        .unwrap()
        .is_none());
    let lost = s
        .single_upload(
            item("k4", 100),
            Box::pin(async { Err(StoreError::Io(std::io::Error::other("disk full"))) }),
        )
        .await;
    assert!(matches!(lost, Err(StoreError::Io(_))), "{lost:?}");
    assert!(s
        .single_upload_by_key(&u.user_id, "k4")
        .await
        .unwrap()
        .is_none());
    let again = s.single_upload(item("k4", 100), stored_ok()).await.unwrap();
    assert!(!again.repeated);
}

/// Bytes already stored, for [`MetadataStore::single_upload`].
fn stored_ok() -> crate::meta::BytesStored {
    Box::pin(async { Ok(()) })
}

both_backends!(
    single_upload_is_keyed_and_atomic,
    search_matches_the_same_assets,
    users_tokens_projects,
    assets_merge_alias_relationships,
    relationships_both_ways_and_lineage,
    provenance_export_details,
    upload_lifecycle_and_quota,
    dedup_points_at_stored_bytes_and_keeps_them_alive,
    concurrent_writers_keep_quota_and_merges,
    auth_device_members_audit,
    batches_settle_each_item_on_its_own,
    concurrent_batches_keep_quota_and_never_deadlock,
    concurrent_batches_of_new_assets_keep_quota_and_leave_no_refused_asset,
    a_batch_dedups_each_file_as_a_lone_session_would,
    a_refused_finish_item_fails_alone,
    concurrent_finish_batches_answer_their_own_items,
    invited_and_disabled_users,
    file_limit_counts_every_file,
    idle_sessions_expire_and_leave_unreferenced_contents,
    deleting_a_version,
    collection_tree,
    asset_charged_to_another_allocation,
);

/// A collection's assets in every order the project page offers, paged,
/// with the exact total; the order follows a new title, record type and
/// version size, a move and a deletion (the triggers of the
/// `collection_listing` migrations).
pub async fn collection_listing_orders_pages_and_counts(s: &dyn MetadataStore) {
    use super::collection_listing::{CollectionSort, CollectionSortKey};
    let u = s.create_user("a@x.org", 1 << 30).await.unwrap();
    let p = project_of(s, "Lab", &u.user_id, 1 << 30).await;
    let raw = collection_in(s, &p, "raw", &p.root_collection_id).await;
    let in_collection = |title: &str, record_type: Option<&str>, collection: &str| NewAsset {
        collection_id: Some(collection.to_string()),
        record_type: record_type.map(str::to_string),
        ..NewAsset::in_root(&p, &u.user_id, title)
    };
    // Created in this order; sizes of their one version.
    let made = [
        ("delta", Some("b"), 30),
        ("alpha", None, 10),
        ("charlie", Some("a"), 50),
        ("bravo", Some("b"), 20),
        ("echo", Some("a"), 40),
    ];
    let mut ids = std::collections::HashMap::new();
    for (title, record_type, size) in made {
        let a = s
            .create_asset(in_collection(title, record_type, &raw.collection_id))
            .await
            .unwrap();
        publish(s, &a.asset_id, &u.user_id, size, &format!("blake3:{title}")).await;
        ids.insert(title, a.asset_id);
    }
    // Not in `raw`: an asset of the root collection and a personal one.
    s.create_asset(in_collection("zulu", None, &p.root_collection_id))
        .await
        .unwrap();
    asset_of(s, &u.user_id, None).await;

    let sort = |key, descending| CollectionSort { key, descending };
    let titles =
        |items: &[Asset]| -> Vec<String> { items.iter().map(|a| a.title.clone()).collect() };
    let listed = |sort: CollectionSort| {
        let collection = raw.collection_id.clone();
        async move {
            let (items, total) = s
                .collection_assets_sorted(&collection, sort, ALL)
                .await
                .unwrap();
            assert_eq!(total, items.len() as u64, "{sort:?}");
            titles(&items)
        }
    };
    use CollectionSortKey::*;
    for (key, ascending) in [
        (Created, ["delta", "alpha", "charlie", "bravo", "echo"]),
        (Title, ["alpha", "bravo", "charlie", "delta", "echo"]),
        (Size, ["alpha", "bravo", "delta", "echo", "charlie"]),
    ] {
        assert_eq!(listed(sort(key, false)).await, ascending, "{key:?}");
        let mut descending = ascending;
        descending.reverse();
        assert_eq!(listed(sort(key, true)).await, descending, "-{key:?}");
    }
    // By type, untyped last either way, the newest first within a type.
    assert_eq!(
        listed(sort(RecordType, false)).await,
        ["echo", "charlie", "bravo", "delta", "alpha"]
    );
    assert_eq!(
        listed(sort(RecordType, true)).await,
        ["bravo", "delta", "echo", "charlie", "alpha"]
    );

    // Pages of two: together the whole order, each with the exact total.
    let mut paged = Vec::new();
    for offset in [0, 2, 4, 6] {
        let (items, total) = s
            .collection_assets_sorted(
                &raw.collection_id,
                sort(Title, false),
                Window { limit: 2, offset },
            )
            .await
            .unwrap();
        assert_eq!(total, 5, "offset {offset}");
        assert!(items.len() <= 2);
        paged.extend(titles(&items));
    }
    assert_eq!(paged, ["alpha", "bravo", "charlie", "delta", "echo"]);
    // The assets come whole: collections and latest version.
    let (first, _) = s
        .collection_assets_sorted(
            &raw.collection_id,
            sort(Size, false),
            Window {
                limit: 1,
                offset: 0,
            },
        )
        .await
        .unwrap();
    assert_eq!(first[0].collection_ids, vec![raw.collection_id.clone()]);
    assert_eq!(first[0].latest_content.as_ref().unwrap().total_bytes, 10);

    // A new title, a new record type and a new, larger version reorder.
    s.update_asset(
        &ids["echo"],
        UpdateAsset {
            title: Some("aardvark".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        listed(sort(Title, false)).await,
        ["aardvark", "alpha", "bravo", "charlie", "delta"]
    );
    publish(s, &ids["alpha"], &u.user_id, 100, "blake3:alpha-2").await;
    assert_eq!(
        listed(sort(Size, true)).await,
        ["alpha", "charlie", "aardvark", "delta", "bravo"]
    );
    s.update_asset(
        &ids["alpha"],
        UpdateAsset {
            record_type: Some("a".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        listed(sort(RecordType, false)).await,
        ["aardvark", "charlie", "alpha", "bravo", "delta"]
    );
    // Deleting the newest version gives the asset its older size again.
    let (versions, _) = s.list_contents(&ids["alpha"], ALL).await.unwrap();
    s.delete_content(&ids["alpha"], &versions[0].content_id)
        .await
        .unwrap();
    assert_eq!(
        listed(sort(Size, false)).await,
        ["alpha", "bravo", "delta", "aardvark", "charlie"]
    );

    // A move and a deletion leave the collection (and its total).
    s.move_asset_to_collection(&ids["bravo"], &p.root_collection_id)
        .await
        .unwrap();
    s.delete_asset(&ids["delta"]).await.unwrap();
    assert_eq!(
        listed(sort(Created, false)).await,
        ["alpha", "charlie", "aardvark"]
    );
    let (root, total) = s
        .collection_assets_sorted(&p.root_collection_id, sort(Title, false), ALL)
        .await
        .unwrap();
    assert_eq!(
        (titles(&root), total),
        (vec!["bravo".to_string(), "zulu".into()], 2)
    );
    // The REST list (oldest first) reads the same rows.
    let (rest, total) = s
        .list_collection_assets(&raw.collection_id, ALL)
        .await
        .unwrap();
    assert_eq!(
        (titles(&rest), total),
        (
            vec!["alpha".to_string(), "charlie".into(), "aardvark".into()],
            3
        )
    );
    // An unknown collection holds nothing.
    assert_eq!(
        s.collection_assets_sorted("nope", CollectionSort::NEWEST, ALL)
            .await
            .unwrap()
            .1,
        0
    );
}

both_backends!(collection_listing_orders_pages_and_counts);
