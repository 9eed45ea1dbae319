//! The metadata store: every piece of state except the bytes themselves.
//!
//! The trait speaks in the wire types of `dataerai-proto` where they match one to
//! one (a stored asset *is* an [`Asset`]), plus a few records of its own for
//! things the API never shows (token hashes, upload owners, chunk sizes).
//! Authorization is not the store's business: the server decides who may call
//! what, the store keeps the data consistent (transactions, unique keys, quotas).

#[cfg(test)]
mod admin_conformance;
pub mod auth;
mod collection_listing;
mod collections;
#[cfg(test)]
mod conformance;
mod lineage;
pub mod postgres;
mod provenance;
mod rows;
mod search;
#[cfg(all(test, feature = "search-bench"))]
mod search_bench;
mod shared;
mod single_upload;
pub(crate) mod sql;
pub mod sqlite;
pub mod time;
#[cfg(all(test, feature = "search-bench"))]
mod web_bench;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use dataerai_proto::api::{
    Allocation, Asset, Collection, ContentVersion, OwnerType, Project, ProjectRole, Relationship,
    UpdateAsset, UploadFileSpec, UploadSession,
};
use serde_json::{Map, Value};

use crate::error::Result;

pub use collection_listing::{CollectionSort, CollectionSortKey};
pub use collections::{EnsurePath, Ensured, NewCollection};
pub use lineage::{LineageDirection, RelationshipSides};
pub use provenance::{AssetFacts, ContentFacts};
pub use single_upload::{BytesStored, SingleUploadDone, SingleUploadItem};

/// A fresh content version id, for [`NewUpload::content_id`].
pub fn new_content_id() -> String {
    shared::new_id()
}

#[derive(Debug, Clone)]
pub struct User {
    pub user_id: String,
    pub email: String,
    pub created_at: DateTime<Utc>,
}

/// A bearer token as stored: who it belongs to and what it may do.
#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub token_id: String,
    pub user_id: String,
    pub email: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct NewToken {
    pub user_id: String,
    pub name: String,
    /// Hex digest of the token (the token itself is never given to the store).
    pub token_hash: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct NewAsset {
    pub title: String,
    pub description: Option<String>,
    pub alias: Option<String>,
    pub tags: Vec<String>,
    pub metadata: Map<String, Value>,
    pub owner_type: OwnerType,
    pub owner_id: String,
    pub collection_id: Option<String>,
    pub created_by: String,
    pub record_type: Option<String>,
    /// The allocation every version of the asset is charged to, when not
    /// the owner's (`None`: the owner's). The server decides who may name
    /// which; the store only keeps the counters of the one named.
    pub allocation_id: Option<String>,
}

impl NewAsset {
    /// An asset of project `p` filed in its root collection, made by
    /// `created_by`, with nothing but a title (set the rest with `..`).
    pub fn in_root(p: &Project, created_by: &str, title: &str) -> Self {
        NewAsset {
            title: title.into(),
            description: None,
            alias: None,
            tags: vec![],
            metadata: Map::new(),
            owner_type: OwnerType::Project,
            owner_id: p.project_id.clone(),
            collection_id: Some(p.root_collection_id.clone()),
            created_by: created_by.into(),
            record_type: None,
            allocation_id: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewRelationship {
    pub from_asset_id: String,
    pub to_asset_id: String,
    pub rel_type: String,
    pub analysis_mode: Option<String>,
    pub qualifiers: Map<String, Value>,
    pub created_by: String,
}

/// An upload session with what the API does not show.
#[derive(Debug, Clone)]
pub struct UploadRecord {
    pub session: UploadSession,
    /// The user who opened the session (only they may use it).
    pub user_id: String,
    /// `(owner_type, owner_id)` of the asset (`None` once it is deleted): the
    /// access check needs nothing else of the asset.
    pub owner: Option<(OwnerType, String)>,
    /// Per file (in file order): the verified `blake3:<hex>` already known for
    /// it — set for deduplicated files, whose bytes are stored already.
    pub known_checksums: Vec<Option<String>>,
    /// The last request on the session (see [`MetadataStore::touch_upload`]).
    pub last_active_at: DateTime<Utc>,
    /// Why an aborted session was closed by the server, if it was.
    pub closed_reason: Option<CloseReason>,
}

/// Why the server (not the session's user) aborted an upload session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// No request on it for longer than the server's idle limit.
    Expired,
    /// Its user was removed from the project owning the asset.
    MemberRemoved,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Expired => "expired",
            CloseReason::MemberRemoved => "member_removed",
        }
    }

    /// The stored text; an unknown value reads as no reason (a plain abort).
    pub fn parse(text: &str) -> Option<CloseReason> {
        match text {
            "expired" => Some(CloseReason::Expired),
            "member_removed" => Some(CloseReason::MemberRemoved),
            _ => None,
        }
    }
}

/// One session [`MetadataStore::expire_upload`] aborted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiredUpload {
    pub upload_id: String,
    pub asset_id: String,
    /// The asset was removed with it: the session's user had created it and
    /// it held no other (published or pending) content version.
    pub asset_deleted: bool,
}

/// Where the chunks of one file physically live. For most files that is the
/// file's own content version; a deduplicated file points at the file (of an
/// earlier version, maybe of another asset of the same owner) whose chunks hold
/// its bytes. Blob keys are `(content_id, file_index, chunk_index)` with chunks
/// of `chunk_size` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobLocation {
    pub content_id: String,
    pub file_index: u32,
    pub chunk_size: u64,
}

/// Where a content version's bytes are and how they are cut.
#[derive(Debug, Clone)]
pub struct ContentRecord {
    pub version: ContentVersion,
    /// Chunk size of the upload that created this version.
    pub chunk_size: u64,
    /// Where each file's bytes are, in file order.
    pub locations: Vec<BlobLocation>,
}

/// What was recorded for a chunk: its size and BLAKE3 hex digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkRecord {
    pub size: u64,
    pub hash: String,
}

/// The lone chunk of a single-file, single-chunk upload session, to record and
/// complete in one go (see [`MetadataStore::finish_small`]).
#[derive(Debug, Clone)]
pub struct SmallFinish {
    pub upload_id: String,
    /// The chunk, verified and stored; its hash is also the file's BLAKE3.
    pub chunk: ChunkRecord,
}

/// Where a new content version goes: a new asset, or an existing one.
#[derive(Debug, Clone)]
// Not boxed: a few hundred bytes per item of a bounded batch, built once.
#[allow(clippy::large_enum_variant)]
pub enum UploadTarget {
    NewAsset(NewAsset),
    Existing(String),
}

/// One item of [`MetadataStore::create_uploads`].
#[derive(Debug, Clone)]
pub struct NewUpload {
    pub target: UploadTarget,
    pub user_id: String,
    pub chunk_size: u64,
    pub files: Vec<UploadFileSpec>,
    /// The new version's id, when the caller chose it ([`new_content_id`]):
    /// a lone small upload stores its bytes under it before the version is
    /// written ([`MetadataStore::single_upload`]). `None`: a fresh one.
    pub content_id: Option<String>,
}

/// A slice of a list: `limit` items from `offset`.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub limit: u64,
    pub offset: u64,
}

/// Metadata store backend. Every method is one transaction.
#[async_trait]
pub trait MetadataStore: auth::AuthStore + Send + Sync + 'static {
    /// Cheap round trip proving the database answers (readiness probe).
    async fn ping(&self) -> Result<()>;

    // ------------------------------------------------------------ users, tokens

    /// Create a user and their personal allocation. Duplicate email → `Conflict`.
    async fn create_user(&self, email: &str, quota_bytes: u64) -> Result<User>;
    async fn user_by_email(&self, email: &str) -> Result<Option<User>>;
    /// The user with this email, made as an *invited* account (no password,
    /// a personal allocation of `quota_bytes`) when there is none: a project
    /// admin adding an unknown email gets the same answer as for a known one.
    async fn user_by_email_or_invite(&self, email: &str, quota_bytes: u64) -> Result<User>;
    /// Turn the invited account of `email` into an ordinary one (what
    /// `admin create-user` does for an email that was invited); `None` when
    /// there is no invited account with that email.
    async fn activate_invited_user(&self, email: &str) -> Result<Option<User>>;
    async fn create_token(&self, token: NewToken) -> Result<String>;
    async fn token_by_hash(&self, token_hash: &str) -> Result<Option<TokenRecord>>;

    // ------------------------------------------------------------ allocations

    async fn allocation(&self, owner_type: OwnerType, owner_id: &str)
        -> Result<Option<Allocation>>;
    /// `(owner_type, owner_id)` of the allocation with this id, if there is one.
    async fn allocation_owner(&self, allocation_id: &str) -> Result<Option<(OwnerType, String)>>;
    /// Set the quota of an existing allocation; `NotFound` when there is none.
    async fn set_quota(
        &self,
        owner_type: OwnerType,
        owner_id: &str,
        quota_bytes: u64,
    ) -> Result<()>;
    /// Set the file limit of an existing allocation (every file of a pending
    /// or complete version counts); `NotFound` when there is none.
    async fn set_max_files(
        &self,
        owner_type: OwnerType,
        owner_id: &str,
        max_files: u64,
    ) -> Result<()>;

    // ------------------------------------------------------------ projects

    /// Create a project with its root collection, the creator as `owner` and an
    /// allocation of `quota_bytes`.
    async fn create_project(
        &self,
        name: &str,
        description: &str,
        created_by: &str,
        quota_bytes: u64,
    ) -> Result<Project>;
    /// The project as seen by `user_id` (`role` filled in); `None` when the
    /// project does not exist or the user is not a member.
    async fn project_for_member(&self, project_id: &str, user_id: &str) -> Result<Option<Project>>;
    async fn project_exists(&self, project_id: &str) -> Result<bool>;
    async fn list_projects(&self, user_id: &str, window: Window) -> Result<(Vec<Project>, u64)>;
    async fn member_role(&self, project_id: &str, user_id: &str) -> Result<Option<ProjectRole>>;

    // ------------------------------------------------------------ collections

    /// A collection with no description (see [`Self::create_child_collection`]).
    async fn create_collection(
        &self,
        project_id: &str,
        name: &str,
        parent_id: &str,
    ) -> Result<Collection> {
        self.create_child_collection(NewCollection {
            project_id: project_id.to_string(),
            parent_id: parent_id.to_string(),
            name: name.to_string(),
            description: String::new(),
        })
        .await
    }
    async fn get_collection(&self, collection_id: &str) -> Result<Option<Collection>>;
    async fn list_collections(
        &self,
        project_id: &str,
        window: Window,
    ) -> Result<(Vec<Collection>, u64)>;
    /// The assets of a collection, oldest first (the REST list).
    async fn list_collection_assets(
        &self,
        collection_id: &str,
        window: Window,
    ) -> Result<(Vec<Asset>, u64)>;
    /// One page of the assets of a collection in `sort` order and how many
    /// it holds (exact), read from its listing indexes
    /// (`collection_listing.rs`): the cost of a page does not grow with the
    /// collection. An unknown collection holds none; who may read it is the
    /// caller's check.
    async fn collection_assets_sorted(
        &self,
        collection_id: &str,
        sort: CollectionSort,
        window: Window,
    ) -> Result<(Vec<Asset>, u64)>;

    // ------------------------------------------------------------ collection tree
    // (`collections.rs`: the parent must be a collection of the same project —
    // the caller checks that on create; sibling names are unique.)

    /// A sibling of the same name → `Conflict` naming it.
    async fn create_child_collection(&self, new: NewCollection) -> Result<Collection>;
    /// The collections directly under `parent_id`, oldest first.
    async fn collection_children(
        &self,
        parent_id: &str,
        window: Window,
    ) -> Result<(Vec<Collection>, u64)>;
    /// Rename and/or move. The root → `Invalid`; a parent in another project
    /// or in the collection's own subtree → `Invalid`; a sibling of the same
    /// name → `Conflict`.
    async fn update_collection(
        &self,
        collection_id: &str,
        name: Option<&str>,
        parent_id: Option<&str>,
    ) -> Result<Collection>;
    /// Delete an empty collection: the root → `Invalid`; child collections or
    /// assets → `Conflict` saying how many.
    async fn delete_collection(&self, collection_id: &str) -> Result<()>;
    /// File a project asset in `collection_id` only (replacing its links); a
    /// collection of another project (or a personal asset) → `Invalid`.
    async fn move_asset_to_collection(&self, asset_id: &str, collection_id: &str) -> Result<()>;
    /// Resolve a collection path, creating what is missing, in one write
    /// transaction (see [`EnsurePath`]).
    async fn ensure_collection_path(&self, want: EnsurePath) -> Result<Ensured>;

    // ------------------------------------------------------------ assets

    /// Alias already used by the same owner → `Conflict`; an
    /// `allocation_id` naming no allocation → `NotFound`.
    async fn create_asset(&self, asset: NewAsset) -> Result<Asset>;
    async fn get_asset(&self, asset_id: &str) -> Result<Option<Asset>>;
    async fn list_assets(
        &self,
        owner_type: OwnerType,
        owner_id: &str,
        window: Window,
    ) -> Result<(Vec<Asset>, u64)>;
    /// Refresh the query planner's statistics (SQLite: `PRAGMA optimize`;
    /// PostgreSQL analyzes by itself). The server calls it on a timer; it is
    /// cheap when nothing changed.
    async fn refresh_statistics(&self) -> Result<()>;
    /// The assets `caller` (a user id) may read that match `request`: one
    /// page, the (capped) number of matches and, when asked, facet counts.
    async fn search(
        &self,
        caller: &str,
        request: &crate::search::SearchRequest,
    ) -> Result<crate::search::SearchPage>;
    /// Apply a patch; `metadata` is merged key by key (a `null` value deletes the key).
    async fn update_asset(&self, asset_id: &str, patch: UpdateAsset) -> Result<Asset>;
    /// Delete an asset with its versions, sessions and relationships. Answers the
    /// content ids whose blobs the caller should now delete: those no remaining
    /// content file refers to (a deduplicated file of another asset keeps the
    /// bytes it points at alive).
    async fn delete_asset(&self, asset_id: &str) -> Result<Vec<String>>;

    /// Delete one complete content version of an asset (not its only one:
    /// `Conflict` — delete the asset instead); the usage counters drop by its
    /// bytes and files. Returns, like `delete_asset`, the content ids whose
    /// blobs nothing refers to any more.
    async fn delete_content(&self, asset_id: &str, content_id: &str) -> Result<Vec<String>>;

    // ------------------------------------------------------------ content versions

    /// Complete versions, newest first.
    async fn list_contents(
        &self,
        asset_id: &str,
        window: Window,
    ) -> Result<(Vec<ContentVersion>, u64)>;
    /// A complete version of the asset; `content_id == "latest"` picks the newest.
    async fn get_content(&self, asset_id: &str, content_id: &str) -> Result<Option<ContentRecord>>;

    // ------------------------------------------------------------ uploads

    /// Open an upload session and its pending content version. Fails with
    /// `QuotaExceeded` when used + reserved + the new total exceeds the quota of
    /// the allocation the asset is charged to (its `allocation_id`, else its
    /// owner's); otherwise the total is reserved there.
    ///
    /// A file whose `checksum` (normalised `blake3:<lowercase hex>`) and size
    /// match a file of a complete version of any asset of the same owner is
    /// deduplicated: it points at those bytes and all its chunks count as
    /// received. (Whoever may write an asset may read every asset of its owner,
    /// so this never reveals content the caller could not read.)
    async fn create_upload(
        &self,
        asset_id: &str,
        user_id: &str,
        chunk_size: u64,
        files: &[UploadFileSpec],
    ) -> Result<UploadSession>;
    async fn get_upload(&self, upload_id: &str) -> Result<Option<UploadRecord>>;
    /// [`MetadataStore::get_upload`] of many sessions at once, in their
    /// order (`None` for an unknown id; a repeated id answers its session
    /// again): a few statements for the list.
    async fn get_uploads(&self, upload_ids: &[String]) -> Result<Vec<Option<UploadRecord>>>;
    /// Whether a complete content version of any asset of this owner holds a
    /// file of `size` bytes (a file of another size cannot be identical).
    async fn stores_file_of_size(
        &self,
        owner_type: OwnerType,
        owner_id: &str,
        size: u64,
    ) -> Result<bool>;
    async fn chunk(
        &self,
        upload_id: &str,
        file_index: u32,
        chunk_index: u64,
    ) -> Result<Option<ChunkRecord>>;
    /// The recorded digests (hex) of one file's chunks, by chunk index.
    async fn chunk_hashes(&self, upload_id: &str, file_index: u32) -> Result<Vec<(u64, String)>>;
    /// The digest (hex) recorded for the chunk stored under this blob key
    /// (`content_id` is where the bytes live: a [`BlobLocation`]'s), found
    /// through the session that stored it. `None` when its record is gone: a
    /// deduplicated file may outlive the version (and the session) whose
    /// chunks hold its bytes.
    async fn stored_chunk_hash(
        &self,
        content_id: &str,
        file_index: u32,
        chunk_index: u64,
    ) -> Result<Option<String>>;
    /// Record a verified chunk. If the chunk is already recorded the stored
    /// record is answered unchanged (the caller compares hashes). Fails with
    /// `Invalid` when the session is no longer open.
    async fn record_chunk(
        &self,
        upload_id: &str,
        file_index: u32,
        chunk_index: u64,
        chunk: ChunkRecord,
    ) -> Result<ChunkRecord>;
    /// Publish the session's content version with these per-file checksums
    /// (`blake3:<hex>`, in file order), in one transaction, after checking the
    /// quota again (`QuotaExceeded`).
    async fn complete_upload(
        &self,
        upload_id: &str,
        checksums: &[String],
    ) -> Result<ContentVersion>;
    /// Many [`create_asset`](Self::create_asset) (for a new asset) plus
    /// [`create_upload`](Self::create_upload) pairs; each item succeeds or fails
    /// on its own (a failed item leaves nothing behind). Answers the sessions in
    /// item order. Backends may do it all in one transaction; the default runs
    /// the items one after another.
    async fn create_uploads(&self, items: Vec<NewUpload>) -> Result<Vec<Result<UploadSession>>> {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            out.push(create_upload_default(self, item).await);
        }
        Ok(out)
    }
    /// For each single-file, single-chunk session: [`record_chunk`](Self::record_chunk)
    /// of its chunk, then [`complete_upload`](Self::complete_upload) with the
    /// chunk's hash as the file's checksum, atomically per item. Each item
    /// succeeds or fails on its own and a failed item records nothing; a
    /// recorded chunk with another hash fails the item with `Conflict`.
    async fn finish_small(&self, items: &[SmallFinish]) -> Result<Vec<Result<ContentVersion>>>;
    /// A lone small file in one transaction: its asset (or new version),
    /// session, chunk and published version, as [`create_uploads`](Self::create_uploads)
    /// then [`finish_small`](Self::finish_small) (or, when the owner holds
    /// these bytes already, [`complete_upload`](Self::complete_upload)) would
    /// make them, and the caller's `key` for it. A key the user used before
    /// makes nothing and answers that upload (`repeated`). `stored` is the
    /// chunk's bytes being stored under `upload.content_id`: the transaction
    /// runs meanwhile and commits only after it answers `Ok` (its error makes
    /// nothing and is returned).
    async fn single_upload(
        &self,
        item: SingleUploadItem,
        stored: BytesStored,
    ) -> Result<SingleUploadDone>;
    /// The upload `user_id` made with [`single_upload`](Self::single_upload)
    /// under `key`, if any (`repeated` set).
    async fn single_upload_by_key(
        &self,
        user_id: &str,
        key: &str,
    ) -> Result<Option<SingleUploadDone>>;
    /// Abort an open session; frees its reservation. `Invalid` if not open.
    /// Answers the content ids whose blobs the caller should now delete (the
    /// session's own chunks, and bytes it pointed at that nothing else uses).
    async fn abort_upload(&self, upload_id: &str) -> Result<Vec<String>>;
    /// Number of upload sessions still open (the `dataerai_active_uploads` gauge).
    async fn open_upload_count(&self) -> Result<u64>;
    /// Note a request on an open session at `at` (keeps it from expiring).
    /// Nothing happens to a session that is not open.
    async fn touch_upload(&self, upload_id: &str, at: DateTime<Utc>) -> Result<()>;
    /// Up to `limit` open sessions whose last activity is before `idle_before`,
    /// oldest first.
    async fn idle_uploads(&self, idle_before: DateTime<Utc>, limit: u64) -> Result<Vec<String>>;
    /// Abort an open session idle since before `idle_before` (checked again
    /// under its row lock, so a request that arrived meanwhile keeps it, and
    /// two replicas expiring at once abort it once): the reservation is
    /// released, the session answers [`CloseReason::Expired`] from then on,
    /// and the asset goes too when the session's user created it and it holds
    /// no other content version. `None` when there was nothing to expire.
    /// The session's chunks are left to the garbage collector.
    async fn expire_upload(
        &self,
        upload_id: &str,
        idle_before: DateTime<Utc>,
    ) -> Result<Option<ExpiredUpload>>;
    /// Abort every open session `user_id` holds on assets of project
    /// `project_id` or charged to its allocation (they were removed from
    /// it): reservations released, each
    /// session closed with [`CloseReason::MemberRemoved`]. Answers how many.
    /// Chunks are left to the garbage collector.
    async fn abort_member_uploads(&self, project_id: &str, user_id: &str) -> Result<u64>;

    // ------------------------------------------------------------ garbage collection

    /// Of `candidates` (content ids found in the blob store), those whose
    /// blobs nothing uses: no pending or complete content version stores its
    /// own chunks under the id, and no live file points at it (dedup).
    async fn unreferenced_contents(&self, candidates: Vec<String>) -> Result<Vec<String>>;

    // ------------------------------------------------------------ relationships

    /// Duplicate (from, to, type) → `RelationshipExists`.
    async fn create_relationship(&self, rel: NewRelationship) -> Result<Relationship>;
    /// The relationships of `asset_id` on the given sides, oldest first,
    /// each with the asset at its other end and its direction.
    async fn list_relationships(
        &self,
        asset_id: &str,
        sides: RelationshipSides,
        window: Window,
    ) -> Result<(Vec<Relationship>, u64)>;
    /// Every asset reachable from `root` along relationships within `depth`
    /// steps (only of `types`, when given), and the relationships between
    /// them, at most `max_edges` (then `truncated`). Nodes are not redacted.
    async fn lineage(
        &self,
        root: &str,
        direction: LineageDirection,
        depth: u32,
        types: &[String],
        max_edges: usize,
    ) -> Result<dataerai_proto::api::Lineage>;

    // ------------------------------------------------------------ provenance export

    /// Creator and latest complete content version (with its files) of
    /// those of `asset_ids` that exist, loaded for all at once.
    async fn asset_facts(&self, asset_ids: &[String]) -> Result<Vec<AssetFacts>>;
    /// The qualifiers of those of the relationships `ids` that exist.
    async fn relationship_qualifiers(
        &self,
        ids: &[String],
    ) -> Result<std::collections::HashMap<String, Map<String, Value>>>;
    /// The emails of those of `user_ids` whom `caller` may know by email:
    /// the caller and whoever shares a project with them (others stay ids).
    async fn visible_emails(
        &self,
        caller: &str,
        user_ids: &[String],
    ) -> Result<std::collections::HashMap<String, String>>;
    /// Every relationship whose two ends are both among `asset_ids`.
    async fn relationships_among(
        &self,
        asset_ids: &[String],
    ) -> Result<Vec<dataerai_proto::api::LineageEdge>>;
}

async fn create_upload_default<S: MetadataStore + ?Sized>(
    s: &S,
    item: NewUpload,
) -> Result<UploadSession> {
    let (asset_id, created) = match item.target {
        UploadTarget::NewAsset(asset) => (s.create_asset(asset).await?.asset_id, true),
        UploadTarget::Existing(id) => (id, false),
    };
    let session = s
        .create_upload(&asset_id, &item.user_id, item.chunk_size, &item.files)
        .await;
    if session.is_err() && created {
        s.delete_asset(&asset_id).await?;
    }
    session
}
