//! What a provenance export needs beyond a lineage or a search, loaded for
//! many assets at once (`WHERE id IN (…)`, a few hundred ids per statement),
//! never one query per asset: who created each asset and its latest content
//! version's files, the qualifiers of relationships, the emails a caller may
//! see, and the relationships among a set of assets.

use std::collections::{HashMap, HashSet};

use dataerai_proto::api::{ContentFile, LineageEdge};
use serde_json::{Map, Value};

use super::rows::FileRow;
use super::shared::{marks, Backend, ConnOf};
use super::sql::{Arg, Conn, Decoded, Dialect};
use crate::error::Result;

/// Ids per `IN (…)`.
const IDS_PER_SELECT: usize = 500;

/// An asset as a provenance record names it: its creator and the files of
/// its latest complete content version.
#[derive(Debug, Clone)]
pub struct AssetFacts {
    pub asset_id: String,
    /// The user who created (uploaded) the asset.
    pub created_by: String,
    /// The latest complete content version, if any.
    pub content: Option<ContentFacts>,
}

#[derive(Debug, Clone)]
pub struct ContentFacts {
    pub content_id: String,
    pub files: Vec<ContentFile>,
}

/// The rows of one `SELECT … IN (…)` over `ids`, [`IDS_PER_SELECT`] ids per
/// statement: `select` writes the statement around one chunk's placeholders,
/// which follow the `leading` arguments (`$1` … first).
async fn select_in<B: Backend, T: Decoded>(
    c: &mut ConnOf<B>,
    leading: &[Arg],
    ids: &[String],
    select: impl Fn(&str) -> String,
) -> Result<Vec<T>> {
    let mut rows = Vec::new();
    for chunk in ids.chunks(IDS_PER_SELECT) {
        let placeholders = marks(leading.len(), chunk.len());
        let mut args = leading.to_vec();
        args.extend(chunk.iter().map(|id| Arg::from(id.as_str())));
        rows.extend(c.fetch_all::<T>(&select(&placeholders), args).await?);
    }
    Ok(rows)
}

#[derive(sqlx::FromRow)]
struct CreatorRow {
    id: String,
    created_by: String,
}

#[derive(sqlx::FromRow)]
struct LatestRow {
    id: String,
    asset_id: String,
}

#[derive(sqlx::FromRow)]
struct ContentFileRow {
    content_id: String,
    #[sqlx(flatten)]
    file: FileRow,
}

/// [`AssetFacts`] of those of `ids` that exist, in no particular order.
pub(crate) async fn asset_facts<B: Backend>(b: &B, ids: &[String]) -> Result<Vec<AssetFacts>> {
    let mut conn = b.pool().acquire().await?;
    let c: &mut ConnOf<B> = &mut conn;
    let creators: Vec<CreatorRow> = select_in::<B, _>(c, &[], ids, |ids| {
        format!("SELECT id, created_by FROM assets WHERE id IN ({ids})")
    })
    .await?;
    // Newest complete version first: the first row per asset is its latest.
    let versions: Vec<LatestRow> = select_in::<B, _>(c, &[], ids, |ids| {
        format!(
            "SELECT id, asset_id FROM contents WHERE status = 'complete' AND asset_id IN ({ids})
             ORDER BY completed_at DESC, {} DESC",
            <ConnOf<B> as Dialect>::CREATION_ORDER
        )
    })
    .await?;
    let mut latest: HashMap<String, String> = HashMap::new();
    for v in versions {
        latest.entry(v.asset_id).or_insert(v.id);
    }
    let content_ids: Vec<String> = latest.values().cloned().collect();
    let rows: Vec<ContentFileRow> = select_in::<B, _>(c, &[], &content_ids, |ids| {
        format!(
            "SELECT content_id, file_index, name, size, checksum, blob_content_id,
                    blob_file_index, blob_chunk_size
               FROM content_files WHERE content_id IN ({ids}) ORDER BY content_id, file_index"
        )
    })
    .await?;
    let mut files: HashMap<String, Vec<ContentFile>> = HashMap::new();
    for row in rows {
        files
            .entry(row.content_id)
            .or_default()
            .push(row.file.api()?);
    }
    Ok(creators
        .into_iter()
        .map(|row| AssetFacts {
            content: latest.get(&row.id).map(|content_id| ContentFacts {
                content_id: content_id.clone(),
                files: files.get(content_id).cloned().unwrap_or_default(),
            }),
            asset_id: row.id,
            created_by: row.created_by,
        })
        .collect())
}

#[derive(sqlx::FromRow)]
struct QualifierRow {
    id: String,
    qualifiers: sqlx::types::Json<Map<String, Value>>,
}

/// The qualifiers of those of the relationships `ids` that exist.
pub(crate) async fn relationship_qualifiers<B: Backend>(
    b: &B,
    ids: &[String],
) -> Result<HashMap<String, Map<String, Value>>> {
    let mut conn = b.pool().acquire().await?;
    let rows: Vec<QualifierRow> = select_in::<B, _>(&mut conn, &[], ids, |ids| {
        format!("SELECT id, qualifiers FROM relationships WHERE id IN ({ids})")
    })
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.qualifiers.0)).collect())
}

/// The emails of those of `user_ids` whom `caller` may know by email: the
/// caller, and whoever shares a project with them.
pub(crate) async fn visible_emails<B: Backend>(
    b: &B,
    caller: &str,
    user_ids: &[String],
) -> Result<HashMap<String, String>> {
    let mut conn = b.pool().acquire().await?;
    let rows: Vec<(String, String)> =
        select_in::<B, _>(&mut conn, &[Arg::from(caller)], user_ids, |ids| {
            format!(
                "SELECT u.id, u.email FROM users u
                  WHERE u.id IN ({ids})
                    AND (u.id = $1 OR EXISTS (
                         SELECT 1 FROM memberships mine
                           JOIN memberships theirs ON theirs.project_id = mine.project_id
                          WHERE mine.user_id = $1 AND theirs.user_id = u.id))"
            )
        })
        .await?;
    Ok(rows.into_iter().collect())
}

/// Every relationship whose two ends are both among `ids`, ordered by id.
pub(crate) async fn relationships_among<B: Backend>(
    b: &B,
    ids: &[String],
) -> Result<Vec<LineageEdge>> {
    let mut conn = b.pool().acquire().await?;
    let rows: Vec<LineageEdge> = select_in::<B, _>(&mut conn, &[], ids, |ids| {
        format!(
            "SELECT id, from_asset_id, to_asset_id, type, analysis_mode FROM relationships
              WHERE from_asset_id IN ({ids})"
        )
    })
    .await?;
    let wanted: HashSet<&str> = ids.iter().map(String::as_str).collect();
    let mut out: Vec<LineageEdge> = rows
        .into_iter()
        .filter(|e| wanted.contains(e.to_asset_id.as_str()))
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}
