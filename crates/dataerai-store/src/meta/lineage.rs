//! Relationships seen from either end, and lineage: every asset reachable
//! from one along relationships, in one recursive query written once for
//! both backends (`WITH RECURSIVE`, bounded by depth, cycles terminate
//! because the walk's rows are `(relationship, depth)` pairs kept by `UNION`).

use std::collections::HashMap;

use dataerai_proto::api::{
    AssetSummary, Lineage, LineageEdge, LineageNode, OwnerType, Relationship, RelationshipDirection,
};

use super::rows::RelationshipRow;
use super::shared::{marks, Backend, ConnOf};
use super::sql::{args, Arg, Conn, Dialect};
use crate::error::Result;

/// Which relationships of an asset a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelationshipSides {
    /// From the asset (it is the source).
    Out,
    /// Pointing at the asset (it is the target).
    In,
    /// Both.
    Both,
}

/// Which way a lineage walk goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineageDirection {
    /// From the asset to its origins (relationships point from the
    /// dependent asset to its origin).
    Up,
    /// From the asset to what was derived from it.
    Down,
    /// Both ways.
    Both,
}

/// A relationship row with the side it was found from (`out` or `in`).
#[derive(sqlx::FromRow)]
pub(crate) struct DirectedRow {
    #[sqlx(flatten)]
    rel: RelationshipRow,
    direction: String,
}

/// The `FROM … WHERE` of a relationship list of `$1`, and its columns.
pub(crate) fn sides_select(sides: RelationshipSides) -> (&'static str, &'static str) {
    match sides {
        RelationshipSides::Out => (
            "*, 'out' AS direction",
            "relationships WHERE from_asset_id = $1",
        ),
        RelationshipSides::In => (
            "*, 'in' AS direction",
            "relationships WHERE to_asset_id = $1",
        ),
        RelationshipSides::Both => (
            "*, CASE WHEN from_asset_id = $1 THEN 'out' ELSE 'in' END AS direction",
            "relationships WHERE from_asset_id = $1 OR to_asset_id = $1",
        ),
    }
}

/// One listed relationship with the asset at its other end.
pub(crate) async fn directed<C: Dialect>(c: &mut C, row: DirectedRow) -> Result<Relationship> {
    let rel = row.rel;
    let direction = if row.direction == "in" {
        RelationshipDirection::In
    } else {
        RelationshipDirection::Out
    };
    let other = match direction {
        RelationshipDirection::Out => &rel.to_asset_id,
        RelationshipDirection::In => &rel.from_asset_id,
    };
    let related: AssetSummary = c
        .fetch_one(
            "SELECT id, title, alias, owner_type, owner_id FROM assets WHERE id = $1",
            args![other],
        )
        .await?;
    Ok(Relationship {
        id: rel.id,
        rel_type: rel.rel_type,
        from_asset_id: rel.from_asset_id,
        to_asset_id: rel.to_asset_id,
        analysis_mode: rel.analysis_mode,
        qualifiers: rel.qualifiers.0,
        created_by: rel.created_by,
        created_at: rel.created_at,
        related_asset: related,
        direction,
    })
}

#[derive(sqlx::FromRow)]
struct EdgeRow {
    #[sqlx(flatten)]
    edge: LineageEdge,
    depth: i64,
}

#[derive(sqlx::FromRow)]
struct NodeRow {
    id: String,
    title: String,
    alias: Option<String>,
    record_type: Option<String>,
    owner_type: OwnerType,
    owner_id: String,
}

/// Ids per `IN (…)` when loading the nodes.
const NODES_PER_SELECT: usize = 500;

/// The walk one way: the relationships reachable from `root` within
/// `depth` steps (each with the fewest steps it was reached in), at most
/// `limit` of them, nearest first.
async fn walk<C: Dialect>(
    c: &mut C,
    root: &str,
    up: bool,
    depth: u32,
    types: &[String],
    limit: usize,
) -> Result<Vec<EdgeRow>> {
    // Up: from the dependent asset (near end) to its origin (far end).
    let (near, far) = if up {
        ("from_asset_id", "to_asset_id")
    } else {
        ("to_asset_id", "from_asset_id")
    };
    let mut params = args![root, i64::from(depth), limit as i64];
    let type_filter = if types.is_empty() {
        String::new()
    } else {
        let type_marks = marks(params.len(), types.len());
        params.extend(types.iter().map(|t| Arg::from(t.as_str())));
        format!(" AND r.type IN ({type_marks})")
    };
    let sql = format!(
        "WITH RECURSIVE walk(id, next, depth) AS (
             SELECT r.id, r.{far}, CAST(1 AS BIGINT) FROM relationships r
              WHERE r.{near} = $1{type_filter}
             UNION
             SELECT r.id, r.{far}, w.depth + 1 FROM walk w
               JOIN relationships r ON r.{near} = w.next
              WHERE w.depth < $2{type_filter}
         )
         SELECT r.id, r.from_asset_id, r.to_asset_id, r.type, r.analysis_mode, m.depth
           FROM (SELECT id, MIN(depth) AS depth FROM walk GROUP BY id) m
           JOIN relationships r ON r.id = m.id
          ORDER BY m.depth, r.id
          LIMIT $3"
    );
    c.fetch_all(&sql, params).await
}

/// The lineage of `root` (nodes not redacted: the caller decides who may
/// read what). `depth` ≥ 1; at most `max_edges` edges (then `truncated`).
pub(crate) async fn lineage<B: Backend>(
    b: &B,
    root: &str,
    direction: LineageDirection,
    depth: u32,
    types: &[String],
    max_edges: usize,
) -> Result<Lineage> {
    let mut conn = b.pool().acquire().await?;
    let c: &mut ConnOf<B> = &mut conn;
    let ways: &[bool] = match direction {
        LineageDirection::Up => &[true],
        LineageDirection::Down => &[false],
        LineageDirection::Both => &[true, false],
    };
    // Each edge with the way it was walked (`true`: up).
    let mut edges: Vec<(EdgeRow, bool)> = Vec::new();
    let mut truncated = false;
    for &up in ways {
        let mut found = walk(c, root, up, depth, types, max_edges + 1).await?;
        if found.len() > max_edges {
            truncated = true;
            found.truncate(max_edges);
        }
        edges.extend(found.into_iter().map(|row| (row, up)));
    }
    // An edge found both ways (a cycle through the root) is listed once.
    let mut seen = std::collections::HashSet::new();
    edges.retain(|(e, _)| seen.insert(e.edge.id.clone()));
    if edges.len() > max_edges {
        truncated = true;
        edges.truncate(max_edges);
    }
    // The far end of an edge reached in d steps is d steps from the root,
    // its near end d - 1; an asset's depth is the least of these.
    let mut depths: HashMap<String, u32> = HashMap::new();
    depths.insert(root.to_string(), 0);
    for (e, up) in &edges {
        let d = u32::try_from(e.depth).unwrap_or(u32::MAX);
        let (near, far) = if *up {
            (&e.edge.from_asset_id, &e.edge.to_asset_id)
        } else {
            (&e.edge.to_asset_id, &e.edge.from_asset_id)
        };
        for (id, at) in [(near, d.saturating_sub(1)), (far, d)] {
            let entry = depths.entry(id.clone()).or_insert(u32::MAX);
            *entry = (*entry).min(at);
        }
    }
    let mut ids: Vec<String> = depths.keys().cloned().collect();
    ids.sort();
    let mut nodes: Vec<LineageNode> = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(NODES_PER_SELECT) {
        let sql = format!(
            "SELECT id, title, alias, record_type, owner_type, owner_id FROM assets WHERE id IN ({})",
            marks(0, chunk.len())
        );
        let params: Vec<Arg> = chunk.iter().map(|id| Arg::from(id.as_str())).collect();
        let rows: Vec<NodeRow> = c.fetch_all(&sql, params).await?;
        let mut by_id: HashMap<String, NodeRow> =
            rows.into_iter().map(|r| (r.id.clone(), r)).collect();
        for id in chunk {
            let depth = depths.get(id).copied().unwrap_or(0);
            let node = match by_id.remove(id) {
                Some(r) => LineageNode {
                    id: r.id,
                    title: Some(r.title),
                    alias: r.alias,
                    record_type: r.record_type,
                    owner_type: Some(r.owner_type),
                    owner_id: Some(r.owner_id),
                    depth,
                    redacted: false,
                },
                None => LineageNode {
                    id: id.clone(),
                    title: None,
                    alias: None,
                    record_type: None,
                    owner_type: None,
                    owner_id: None,
                    depth,
                    redacted: true,
                },
            };
            nodes.push(node);
        }
    }
    nodes.sort_by(|a, b| a.depth.cmp(&b.depth).then_with(|| a.id.cmp(&b.id)));
    Ok(Lineage {
        root: root.to_string(),
        nodes,
        edges: edges.into_iter().map(|(e, _)| e.edge).collect(),
        truncated,
    })
}
