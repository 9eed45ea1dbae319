-- Schema of the scale-out (PostgreSQL) metadata store: the same tables as the
-- SQLite schema after its migrations 0001 + 0002, in native types (TIMESTAMPTZ,
-- JSONB, BIGINT). Quota usage is not stored: it is summed from content
-- versions, so it can never drift. Quota-changing transactions lock the owner's
-- `allocations` row (SELECT … FOR UPDATE), which serialises them per owner the
-- way SQLite's BEGIN IMMEDIATE serialises all writers.

CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    email       TEXT NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    -- BLAKE3 hex digest of the token; the token itself is never stored.
    token_hash  TEXT NOT NULL UNIQUE,
    scopes      TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ
);

-- A storage allocation (quota) of a user (personal assets) or a project.
CREATE TABLE allocations (
    id          TEXT PRIMARY KEY,
    owner_type  TEXT NOT NULL,
    owner_id    TEXT NOT NULL,
    quota_bytes BIGINT NOT NULL,
    UNIQUE (owner_type, owner_id)
);

CREATE TABLE projects (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    description         TEXT NOT NULL,
    root_collection_id  TEXT NOT NULL,
    created_by          TEXT NOT NULL REFERENCES users(id),
    created_at          TIMESTAMPTZ NOT NULL
);

CREATE TABLE memberships (
    project_id  TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role        TEXT NOT NULL,
    PRIMARY KEY (project_id, user_id)
);

CREATE TABLE collections (
    id          TEXT PRIMARY KEY,
    project_id  TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    parent_id   TEXT REFERENCES collections(id),
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX collections_project ON collections(project_id);

CREATE TABLE assets (
    id          TEXT PRIMARY KEY,
    title       TEXT NOT NULL,
    description TEXT,
    alias       TEXT,
    tags        JSONB NOT NULL,
    metadata    JSONB NOT NULL,
    owner_type  TEXT NOT NULL,
    owner_id    TEXT NOT NULL,
    created_by  TEXT NOT NULL REFERENCES users(id),
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    -- NULL aliases never collide (NULLs are distinct in UNIQUE constraints).
    UNIQUE (owner_type, owner_id, alias)
);
CREATE INDEX assets_owner ON assets(owner_type, owner_id);

CREATE TABLE asset_collections (
    asset_id      TEXT NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
    collection_id TEXT NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    PRIMARY KEY (asset_id, collection_id)
);
CREATE INDEX asset_collections_collection ON asset_collections(collection_id);

-- A content version. `pending` while its upload session is open, then `complete`
-- (published: the flip happens in one transaction) or `aborted`.
-- `seq` breaks ties between versions completed in the same microsecond (SQLite: rowid).
CREATE TABLE contents (
    id            TEXT PRIMARY KEY,
    seq           BIGINT GENERATED ALWAYS AS IDENTITY,
    asset_id      TEXT NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
    status        TEXT NOT NULL,
    total_bytes   BIGINT NOT NULL,
    chunk_size    BIGINT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    completed_at  TIMESTAMPTZ
);
CREATE INDEX contents_asset ON contents(asset_id, status, completed_at);

-- A deduplicated file points (blob_*) at the file whose chunks hold its bytes;
-- NULL = the file's own chunks. See the SQLite migration 0002 for the rules.
CREATE TABLE content_files (
    content_id       TEXT NOT NULL REFERENCES contents(id) ON DELETE CASCADE,
    file_index       BIGINT NOT NULL,
    name             TEXT NOT NULL,
    size             BIGINT NOT NULL,
    checksum         TEXT,
    blob_content_id  TEXT,
    blob_file_index  BIGINT,
    blob_chunk_size  BIGINT,
    PRIMARY KEY (content_id, file_index)
);
CREATE INDEX content_files_checksum ON content_files(checksum, size);
CREATE INDEX content_files_blob ON content_files(blob_content_id);

CREATE TABLE uploads (
    id          TEXT PRIMARY KEY,
    asset_id    TEXT NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
    content_id  TEXT NOT NULL REFERENCES contents(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users(id),
    chunk_size  BIGINT NOT NULL,
    status      TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX uploads_status ON uploads(status);

-- Chunks the server holds durably and verified. `hash` (BLAKE3 hex) also names
-- the chunk's object in an S3 blob store.
CREATE TABLE upload_chunks (
    upload_id    TEXT NOT NULL REFERENCES uploads(id) ON DELETE CASCADE,
    file_index   BIGINT NOT NULL,
    chunk_index  BIGINT NOT NULL,
    size         BIGINT NOT NULL,
    hash         TEXT NOT NULL,
    PRIMARY KEY (upload_id, file_index, chunk_index)
);

CREATE TABLE relationships (
    id             TEXT PRIMARY KEY,
    from_asset_id  TEXT NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
    to_asset_id    TEXT NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
    type           TEXT NOT NULL,
    analysis_mode  TEXT,
    qualifiers     JSONB NOT NULL,
    created_by     TEXT NOT NULL REFERENCES users(id),
    created_at     TIMESTAMPTZ NOT NULL,
    UNIQUE (from_asset_id, to_asset_id, type)
);
CREATE INDEX relationships_to ON relationships(to_asset_id);
