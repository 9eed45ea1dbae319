//! Collections as a tree: each collection has a parent (a project's root
//! collection has none and carries the project's name), sibling names are
//! unique within a parent (the `collections_sibling_name` index), and a
//! collection can be renamed, moved (never into its own subtree nor into
//! another project) and deleted when empty. A collection path
//! (`Project/raw/2026-12-06`) is resolved — and what is missing created — in
//! one write transaction, so concurrent calls for the same path agree.
//!
//! Written once for both backends, like [`super::shared`]. Who may do what is
//! the server's decision: [`EnsurePath::may_create`] is how it tells.

use dataerai_proto::api::{Collection, OwnerType, ProjectRole};

use super::shared::{create_project_in, list, new_id, unique, Backend, Commit, ConnOf, Select};
use super::sql::{args, Conn, Dialect};
use super::time::now;
use super::Window;
use crate::error::{Result, StoreError};

/// A collection to create under `parent_id` (see
/// [`super::MetadataStore::create_child_collection`]).
#[derive(Debug, Clone)]
pub struct NewCollection {
    pub project_id: String,
    pub parent_id: String,
    pub name: String,
    pub description: String,
}

/// A collection path to resolve (see [`super::MetadataStore::ensure_collection_path`]).
#[derive(Debug, Clone)]
pub struct EnsurePath {
    /// Who asks: the first segment is one of their projects, by name.
    pub user_id: String,
    /// The project's name, then each collection under it (at least one
    /// segment, none empty: the server checks).
    pub segments: Vec<String>,
    /// Create the project (the caller its owner) when they belong to none of
    /// that name.
    pub create_project: bool,
    /// The byte quota of a project created here.
    pub project_quota_bytes: u64,
    /// Whether a member of this role may create collections.
    pub may_create: fn(ProjectRole) -> bool,
}

/// What resolving a collection path found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ensured {
    /// Every segment exists now.
    Resolved {
        project_id: String,
        project_name: String,
        collection_id: String,
        /// Whether anything (project or collection) was created.
        created: bool,
    },
    /// The caller belongs to no project of that name (and none was to be created).
    NoProject,
    /// The caller belongs to several projects of that name: their ids.
    SeveralProjects(Vec<String>),
    /// A segment is missing and the caller's role may not create it; nothing
    /// was created.
    MayNotCreate { project_id: String, segment: String },
}

/// A collection row with its counts (read by every collection lookup here).
#[derive(sqlx::FromRow)]
pub(crate) struct CollectionRow {
    #[sqlx(flatten)]
    collection: Collection,
    asset_count: i64,
    child_count: i64,
}

impl CollectionRow {
    fn into_api(self) -> Result<Collection> {
        Ok(Collection {
            asset_count: crate::rules::unsigned("asset_count", self.asset_count)?,
            child_count: crate::rules::unsigned("child_count", self.child_count)?,
            ..self.collection
        })
    }
}

/// The columns of a [`CollectionRow`] from `collections c`.
const COLUMNS: &str = "c.id, c.project_id, c.name, c.parent_id, c.description, c.created_at,
    (SELECT COUNT(*) FROM asset_collections ac WHERE ac.collection_id = c.id) AS asset_count,
    (SELECT COUNT(*) FROM collections k WHERE k.parent_id = c.id) AS child_count";

fn map_row<C: Send>(
    _: &mut C,
    row: CollectionRow,
) -> futures::future::BoxFuture<'_, Result<Collection>> {
    Box::pin(async move { row.into_api() })
}

/// A collection with its counts; `lock`: its row stays locked until the
/// transaction ends.
async fn by_id<C: Dialect>(
    c: &mut C,
    collection_id: &str,
    lock: bool,
) -> Result<Option<Collection>> {
    if lock {
        // Apart from the counts: PostgreSQL locks no rows of a select with
        // aggregates.
        let sql = format!("SELECT id FROM collections WHERE id = $1{}", C::FOR_UPDATE);
        let row: Option<(String,)> = c.fetch_optional(&sql, args![collection_id]).await?;
        if row.is_none() {
            return Ok(None);
        }
    }
    let sql = format!("SELECT {COLUMNS} FROM collections c WHERE c.id = $1");
    let row: Option<CollectionRow> = c.fetch_optional(&sql, args![collection_id]).await?;
    row.map(CollectionRow::into_api).transpose()
}

/// [`by_id`] of a collection that must be there: `NotFound` otherwise.
async fn existing<C: Dialect>(c: &mut C, collection_id: &str, lock: bool) -> Result<Collection> {
    by_id(c, collection_id, lock)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("collection {collection_id}")))
}

pub(super) async fn get<B: Backend>(b: &B, collection_id: &str) -> Result<Option<Collection>> {
    let mut conn = b.pool().acquire().await?;
    by_id(&mut *conn, collection_id, false).await
}

/// Every collection of a project, oldest first.
pub(super) async fn of_project<B: Backend>(
    b: &B,
    project_id: &str,
    window: Window,
) -> Result<(Vec<Collection>, u64)> {
    oldest_first(b, "project_id", project_id, window).await
}

/// The collections directly under `parent_id`, oldest first.
pub(super) async fn children<B: Backend>(
    b: &B,
    parent_id: &str,
    window: Window,
) -> Result<(Vec<Collection>, u64)> {
    oldest_first(b, "parent_id", parent_id, window).await
}

/// A window of the collections whose `column` is `value`, oldest first (not
/// by name: the databases would sort names by different collations).
async fn oldest_first<B: Backend>(
    b: &B,
    column: &'static str,
    value: &str,
    window: Window,
) -> Result<(Vec<Collection>, u64)> {
    let from = format!("collections c WHERE c.{column} = $1");
    let select = Select {
        columns: COLUMNS,
        from: &from,
        order: "c.created_at, c.id",
    };
    list(b, select, args![value], window, map_row).await
}

/// `Conflict` naming the sibling that already holds `name` under `parent_id`.
fn name_taken(name: &str, parent_id: &str, existing: &str) -> StoreError {
    StoreError::Conflict(format!(
        "a collection named {name:?} already exists in collection {parent_id}: {existing}"
    ))
}

/// The id of the child of `parent_id` named `name` (other than `except`).
async fn sibling<C: Dialect>(
    c: &mut C,
    parent_id: &str,
    name: &str,
    except: &str,
) -> Result<Option<String>> {
    let row: Option<(String,)> = c
        .fetch_optional(
            "SELECT id FROM collections WHERE parent_id = $1 AND name = $2 AND id <> $3",
            args![parent_id, name, except],
        )
        .await?;
    Ok(row.map(|(id,)| id))
}

async fn insert<C: Dialect>(c: &mut C, new: &NewCollection) -> Result<String> {
    if let Some(existing) = sibling(c, &new.parent_id, &new.name, "").await? {
        return Err(name_taken(&new.name, &new.parent_id, &existing));
    }
    let id = new_id();
    let inserted = c
        .execute(
            "INSERT INTO collections (id, project_id, name, parent_id, description, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            args![
                &id,
                &new.project_id,
                &new.name,
                &new.parent_id,
                &new.description,
                now()
            ],
        )
        .await;
    // A concurrent create of the same name committed in between.
    unique(inserted, || {
        name_taken(&new.name, &new.parent_id, "created at the same time")
    })?;
    Ok(id)
}

pub(super) async fn create<B: Backend>(b: &B, new: NewCollection) -> Result<Collection> {
    let mut tx = b.write().await?;
    let id = insert(&mut *tx, &new).await?;
    let created = existing(&mut *tx, &id, false).await?;
    tx.commit().await?;
    Ok(created)
}

/// The root-collection refusal of rename, move and delete.
fn root_refused(collection_id: &str, what: &str) -> StoreError {
    StoreError::Invalid(format!(
        "collection {collection_id} is its project's root collection; the root cannot be {what}"
    ))
}

pub(super) async fn update<B: Backend>(
    b: &B,
    collection_id: &str,
    name: Option<&str>,
    parent_id: Option<&str>,
) -> Result<Collection> {
    let mut tx = b.write().await?;
    let c = &mut *tx;
    let current = existing(c, collection_id, true).await?;
    let Some(old_parent) = current.parent_id.clone() else {
        let what = if parent_id.is_some() {
            "moved"
        } else {
            "renamed"
        };
        return Err(root_refused(collection_id, what));
    };
    let parent = match parent_id {
        None => old_parent,
        Some(p) => {
            let target = by_id(c, p, true).await?;
            if target.is_none_or(|t| t.project_id != current.project_id) {
                return Err(StoreError::Invalid(format!(
                    "collection {p} is not a collection of project {}; a collection moves only within its project",
                    current.project_id
                )));
            }
            if in_subtree(c, collection_id, p).await? {
                return Err(StoreError::Invalid(format!(
                    "cannot move collection {collection_id} into {p}: it is the collection itself or one of its sub-collections"
                )));
            }
            p.to_string()
        }
    };
    let name = name.unwrap_or(&current.name);
    if let Some(existing) = sibling(c, &parent, name, collection_id).await? {
        return Err(name_taken(name, &parent, &existing));
    }
    let updated = c
        .execute(
            "UPDATE collections SET name = $1, parent_id = $2 WHERE id = $3",
            args![name, &parent, collection_id],
        )
        .await;
    unique(updated, || {
        name_taken(name, &parent, "created at the same time")
    })?;
    let done = existing(c, collection_id, false).await?;
    tx.commit().await?;
    Ok(done)
}

/// Whether `candidate` is `root` or lies under it.
async fn in_subtree<C: Dialect>(c: &mut C, root: &str, candidate: &str) -> Result<bool> {
    let (inside,): (bool,) = c
        .fetch_one(
            "WITH RECURSIVE sub(id) AS (
                 SELECT CAST($1 AS TEXT)
                 UNION
                 SELECT k.id FROM collections k JOIN sub ON k.parent_id = sub.id
             )
             SELECT EXISTS (SELECT 1 FROM sub WHERE id = $2)",
            args![root, candidate],
        )
        .await?;
    Ok(inside)
}

pub(super) async fn delete<B: Backend>(b: &B, collection_id: &str) -> Result<()> {
    let mut tx = b.write().await?;
    let c = &mut *tx;
    let current = existing(c, collection_id, true).await?;
    if current.parent_id.is_none() {
        return Err(root_refused(collection_id, "deleted"));
    }
    if current.child_count > 0 || current.asset_count > 0 {
        return Err(StoreError::Conflict(format!(
            "collection {collection_id} ({:?}) is not empty: it holds {} collection(s) and {} asset(s); move or delete them first",
            current.name, current.child_count, current.asset_count
        )));
    }
    c.execute(
        "DELETE FROM collections WHERE id = $1",
        args![collection_id],
    )
    .await?;
    tx.commit().await
}

pub(super) async fn move_asset<B: Backend>(
    b: &B,
    asset_id: &str,
    collection_id: &str,
) -> Result<()> {
    let mut tx = b.write().await?;
    let c = &mut *tx;
    let sql = format!(
        "SELECT owner_type, owner_id FROM assets WHERE id = $1{}",
        <ConnOf<B> as Dialect>::FOR_UPDATE
    );
    let owner: Option<super::rows::OwnerRow> = c.fetch_optional(&sql, args![asset_id]).await?;
    let owner = owner.ok_or_else(|| StoreError::NotFound(format!("asset {asset_id}")))?;
    let target = existing(c, collection_id, false).await?;
    if owner.owner_type != OwnerType::Project || owner.owner_id != target.project_id {
        return Err(StoreError::Invalid(format!(
            "collection {collection_id} is not a collection of the project that owns asset {asset_id}; an asset moves only between collections of its project"
        )));
    }
    c.execute(
        "DELETE FROM asset_collections WHERE asset_id = $1",
        args![asset_id],
    )
    .await?;
    c.execute(
        "INSERT INTO asset_collections (asset_id, collection_id) VALUES ($1, $2)",
        args![asset_id, collection_id],
    )
    .await?;
    c.execute(
        "UPDATE assets SET updated_at = $1 WHERE id = $2",
        args![now(), asset_id],
    )
    .await?;
    tx.commit().await
}

pub(super) async fn ensure_path<B: Backend>(b: &B, want: EnsurePath) -> Result<Ensured> {
    let mut tx = b.write().await?;
    let found = ensure_in(&mut *tx, &want).await?;
    if matches!(found, Ensured::Resolved { .. }) {
        tx.commit().await?;
    } else {
        tx.rollback().await?;
    }
    Ok(found)
}

async fn ensure_in<C: Dialect>(c: &mut C, want: &EnsurePath) -> Result<Ensured> {
    let (project_name, rest) = want
        .segments
        .split_first()
        .ok_or_else(|| StoreError::Invalid("a collection path needs a project name".into()))?;
    // One ensure per user at a time (PostgreSQL; SQLite's write lock already
    // serialises): two concurrent calls must not both create the project.
    let user_lock = format!("SELECT id FROM users WHERE id = $1{}", C::FOR_UPDATE);
    let user: Option<(String,)> = c.fetch_optional(&user_lock, args![&want.user_id]).await?;
    if user.is_none() {
        return Err(StoreError::NotFound(format!("user {}", want.user_id)));
    }
    let projects: Vec<(String, String, ProjectRole)> = c
        .fetch_all(
            "SELECT p.id, p.root_collection_id, m.role
             FROM projects p JOIN memberships m ON m.project_id = p.id
             WHERE m.user_id = $1 AND p.name = $2 ORDER BY p.created_at, p.id",
            args![&want.user_id, project_name],
        )
        .await?;
    let mut created = false;
    let (project_id, mut parent, role) = match projects.len() {
        0 if !want.create_project => return Ok(Ensured::NoProject),
        0 => {
            let id =
                create_project_in(c, project_name, "", &want.user_id, want.project_quota_bytes)
                    .await?;
            created = true;
            let (root,): (String,) = c
                .fetch_one(
                    "SELECT root_collection_id FROM projects WHERE id = $1",
                    args![&id],
                )
                .await?;
            (id, root, ProjectRole::Owner)
        }
        1 => projects.into_iter().next().expect("one project"),
        _ => {
            return Ok(Ensured::SeveralProjects(
                projects.into_iter().map(|p| p.0).collect(),
            ))
        }
    };
    for segment in rest {
        if let Some(id) = sibling(c, &parent, segment, "").await? {
            parent = id;
            continue;
        }
        if !(want.may_create)(role) {
            return Ok(Ensured::MayNotCreate {
                project_id,
                segment: segment.clone(),
            });
        }
        // A concurrent ensure by another member may insert the same name:
        // PostgreSQL waits for it and does nothing, and the select below
        // (a fresh snapshot) sees its row.
        c.execute(
            "INSERT INTO collections (id, project_id, name, parent_id, description, created_at)
             VALUES ($1, $2, $3, $4, '', $5)
             ON CONFLICT (parent_id, name) DO NOTHING",
            args![new_id(), &project_id, segment, &parent, now()],
        )
        .await?;
        created = true;
        parent = sibling(c, &parent, segment, "")
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("collection {segment:?}")))?;
    }
    Ok(Ensured::Resolved {
        project_id,
        project_name: project_name.clone(),
        collection_id: parent,
        created,
    })
}

#[cfg(test)]
mod tests {
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

    /// A store from before sibling names were unique: same-named siblings
    /// are renamed by the migration (the later ones get their id), so the
    /// unique index can be built; names differing in case stay as they are.
    #[tokio::test]
    async fn older_stores_with_same_named_siblings_migrate() {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("old.db"))
            .create_if_missing(true)
            .foreign_keys(false);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .unwrap();
        let all = sqlx::migrate!("./migrations/sqlite");
        let mut before = sqlx::migrate!("./migrations/sqlite");
        before.migrations = before
            .migrations
            .iter()
            .filter(|m| !m.description.contains("collection tree"))
            .cloned()
            .collect::<Vec<_>>()
            .into();
        assert_eq!(before.migrations.len() + 1, all.migrations.len());
        before.run(&pool).await.unwrap();
        sqlx::query(
            "INSERT INTO collections (id, project_id, name, parent_id, created_at) VALUES
             ('r', 'p', 'P', NULL, '1'), ('a', 'p', 'x', 'r', '2'), ('b', 'p', 'x', 'r', '3'),
             ('c', 'p', 'X', 'r', '4'), ('r2', 'q', 'P', NULL, '1')",
        )
        .execute(&pool)
        .await
        .unwrap();
        all.run(&pool).await.unwrap();
        let names: Vec<(String, String)> =
            sqlx::query_as("SELECT id, name FROM collections ORDER BY id")
                .fetch_all(&pool)
                .await
                .unwrap();
        let names: Vec<(&str, &str)> = names
            .iter()
            .map(|(i, n)| (i.as_str(), n.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("a", "x"),
                ("b", "x (b)"),
                ("c", "X"),
                ("r", "P"),
                ("r2", "P")
            ]
        );
    }
}
