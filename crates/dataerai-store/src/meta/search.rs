//! The search index and search itself, written once for both backends: the
//! index rows of an asset are rewritten inside the transaction that changed
//! the asset ([`reindex`]), and a search is one compiled query (plus a count
//! and the facets) over them ([`search`]).

use dataerai_proto::api::Asset;
use serde_json::Value;
use sqlx::types::Json;

use super::rows::{AssetRow, ASSET_COLUMNS};
use super::shared::{asset, Backend, Commit, ConnOf};
use super::sql::{args, Arg, Conn, Dialect};
use super::Window;
use crate::error::Result;
use crate::search::index::{FieldValue, Indexed};
use crate::search::sql::compile;
use crate::search::{Facets, SearchRequest};

/// Rows per multi-row `INSERT` into `asset_fields` (5 arguments each).
const FIELDS_PER_INSERT: usize = 100;
/// Facet values returned per facet.
const FACET_VALUES: u64 = 20;

/// Rewrite the index rows of `asset_id` from the asset and its latest
/// complete version (no rows when the asset is gone).
pub(super) async fn reindex<C: Dialect>(c: &mut C, asset_id: &str) -> Result<()> {
    type Source = (
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Json<Vec<String>>,
        Json<Value>,
    );
    let Some((title, description, alias, record_type, tags, metadata)) = c
        .fetch_optional::<Source>(
            "SELECT title, description, alias, record_type, tags, metadata FROM assets WHERE id = $1",
            args![asset_id],
        )
        .await?
    else {
        return Ok(());
    };
    let latest = format!(
        "SELECT f.name, f.size FROM content_files f WHERE f.content_id =
           (SELECT id FROM contents WHERE asset_id = $1 AND status = 'complete'
            ORDER BY completed_at DESC, {} DESC LIMIT 1)
         ORDER BY f.file_index",
        C::CREATION_ORDER
    );
    let files: Vec<(String, i64)> = c.fetch_all(&latest, args![asset_id]).await?;
    let names: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
    let entry = Indexed {
        title: &title,
        description: description.as_deref(),
        alias: alias.as_deref(),
        record_type: record_type.as_deref(),
        tags: &tags.0,
        metadata: &metadata.0,
        file_names: &names,
        size_bytes: files.iter().map(|(_, s)| *s).sum(),
    }
    .entry();
    c.execute(
        "INSERT INTO asset_search (asset_id, body, size_bytes) VALUES ($1, $2, $3)
         ON CONFLICT (asset_id) DO UPDATE SET body = excluded.body, size_bytes = excluded.size_bytes",
        args![asset_id, entry.body, entry.size_bytes],
    )
    .await?;
    c.execute(
        "DELETE FROM asset_tags WHERE asset_id = $1",
        args![asset_id],
    )
    .await?;
    for tag in &entry.tags {
        c.execute(
            "INSERT INTO asset_tags (asset_id, tag) VALUES ($1, $2)",
            args![asset_id, tag],
        )
        .await?;
    }
    c.execute(
        "DELETE FROM asset_fields WHERE asset_id = $1",
        args![asset_id],
    )
    .await?;
    for batch in entry.fields.chunks(FIELDS_PER_INSERT) {
        let mut sql =
            String::from("INSERT INTO asset_fields (asset_id, path, num, txt, flag) VALUES ");
        let mut values = Vec::with_capacity(batch.len() * 5);
        for (i, field) in batch.iter().enumerate() {
            let n = i * 5;
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, ${})",
                n + 1,
                n + 2,
                n + 3,
                n + 4,
                n + 5
            ));
            let (num, txt, flag) = match &field.value {
                FieldValue::Number(v) => (Some(*v), None, None),
                FieldValue::Text(t) => (None, Some(t.clone()), None),
                FieldValue::Bool(b) => (None, None, Some(*b)),
            };
            values.extend([
                Arg::from(asset_id),
                Arg::from(&field.path),
                Arg::Float(num),
                Arg::Text(txt),
                Arg::Bool(flag),
            ]);
        }
        c.execute(&sql, values).await?;
    }
    Ok(())
}

/// Index every asset that has no index row yet (assets stored before the
/// search migration), in batches of one write transaction each.
pub(super) async fn backfill<B: Backend>(store: &B) -> Result<()> {
    loop {
        let mut tx = store.write().await?;
        let c: &mut ConnOf<B> = &mut tx;
        let missing: Vec<(String,)> = c
            .fetch_all(
                "SELECT id FROM assets WHERE id NOT IN (SELECT asset_id FROM asset_search) LIMIT 500",
                vec![],
            )
            .await?;
        if missing.is_empty() {
            return Ok(());
        }
        for (id,) in &missing {
            reindex(c, id).await?;
        }
        tx.commit().await?;
    }
}

/// One page of the assets `caller` may read that match `request`, the total,
/// and (when asked) the facet counts over every match.
pub(super) async fn search<B: Backend>(
    store: &B,
    caller: &str,
    request: &SearchRequest,
) -> Result<(Vec<Asset>, u64, Option<Facets>)> {
    let compiled = compile(
        &request.query,
        &request.sort,
        caller,
        <ConnOf<B> as Dialect>::FULL_TEXT,
    );
    let mut conn = store.pool().acquire().await?;
    let c: &mut ConnOf<B> = &mut conn;
    let Window { limit, offset } = request.window;
    let n = compiled.args.len();
    let page_sql = format!(
        "SELECT {columns} FROM {from} WHERE {filter} ORDER BY {order} LIMIT ${l} OFFSET ${o}",
        columns = qualified(ASSET_COLUMNS),
        from = compiled.from,
        filter = compiled.filter,
        order = compiled.order,
        l = n + 1,
        o = n + 2,
    );
    let mut page_args = compiled.args.clone();
    page_args.extend([Arg::from(limit), Arg::from(offset)]);
    let rows: Vec<AssetRow> = c.fetch_all(&page_sql, page_args).await?;
    let mut assets = Vec::with_capacity(rows.len());
    for row in rows {
        assets.push(asset(c, row).await?);
    }
    // The count and the facets need neither the ranking join nor the order.
    let plain = compile(
        &request.query,
        &crate::search::Sort::Created { descending: false },
        caller,
        <ConnOf<B> as Dialect>::FULL_TEXT,
    );
    let matching = format!("SELECT a.id FROM {} WHERE {}", plain.from, plain.filter);
    let (total,): (i64,) = c
        .fetch_one(
            &format!("SELECT COUNT(*) FROM ({matching}) m"),
            plain.args.clone(),
        )
        .await?;
    let facets = if request.facets {
        let count = |select: &str, group: &str| {
            format!(
                "SELECT {select}, COUNT(*) FROM {group} GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {FACET_VALUES}"
            )
        };
        let tags = count(
            "t.tag",
            &format!("asset_tags t WHERE t.asset_id IN ({matching})"),
        );
        let types = count(
            "a2.record_type",
            &format!("assets a2 WHERE a2.record_type IS NOT NULL AND a2.id IN ({matching})"),
        );
        let projects = count(
            "a2.owner_id",
            &format!("assets a2 WHERE a2.owner_type = 'project' AND a2.id IN ({matching})"),
        );
        let mut out = Vec::new();
        for sql in [tags, types, projects] {
            let rows: Vec<(String, i64)> = c.fetch_all(&sql, plain.args.clone()).await?;
            out.push(
                rows.into_iter()
                    .map(|(v, n)| (v, n.unsigned_abs()))
                    .collect(),
            );
        }
        let projects = out.pop().unwrap_or_default();
        let record_types = out.pop().unwrap_or_default();
        let tags = out.pop().unwrap_or_default();
        Some(Facets {
            tags,
            record_types,
            projects,
        })
    } else {
        None
    };
    Ok((assets, total.unsigned_abs(), facets))
}

/// `id, title, …` → `a.id, a.title, …`.
fn qualified(columns: &str) -> String {
    columns
        .split(',')
        .map(|c| format!("a.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}
