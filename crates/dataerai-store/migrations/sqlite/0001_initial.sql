-- Initial schema of the embedded (SQLite) metadata store.
-- Ids are UUID strings, timestamps RFC 3339 UTC strings, JSON columns TEXT.
-- Quota usage is not stored: it is summed from content versions, so it can never drift.

CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    email       TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);

CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    -- BLAKE3 hex digest of the token; the token itself is never stored.
    token_hash  TEXT NOT NULL UNIQUE,
    scopes      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT
);

-- A storage allocation (quota) of a user (personal assets) or a project.
CREATE TABLE allocations (
    id          TEXT PRIMARY KEY,
    owner_type  TEXT NOT NULL,
    owner_id    TEXT NOT NULL,
    quota_bytes INTEGER NOT NULL,
    UNIQUE (owner_type, owner_id)
);

CREATE TABLE projects (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    description         TEXT NOT NULL,
    root_collection_id  TEXT NOT NULL,
    created_by          TEXT NOT NULL REFERENCES users(id),
    created_at          TEXT NOT NULL
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
    created_at  TEXT NOT NULL
);
CREATE INDEX collections_project ON collections(project_id);

CREATE TABLE assets (
    id          TEXT PRIMARY KEY,
    title       TEXT NOT NULL,
    description TEXT,
    alias       TEXT,
    tags        TEXT NOT NULL,
    metadata    TEXT NOT NULL,
    owner_type  TEXT NOT NULL,
    owner_id    TEXT NOT NULL,
    created_by  TEXT NOT NULL REFERENCES users(id),
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    -- NULL aliases never collide (SQLite treats NULLs as distinct).
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
CREATE TABLE contents (
    id            TEXT PRIMARY KEY,
    asset_id      TEXT NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
    status        TEXT NOT NULL,
    total_bytes   INTEGER NOT NULL,
    chunk_size    INTEGER NOT NULL,
    created_at    TEXT NOT NULL,
    completed_at  TEXT
);
CREATE INDEX contents_asset ON contents(asset_id, status, completed_at);

CREATE TABLE content_files (
    content_id  TEXT NOT NULL REFERENCES contents(id) ON DELETE CASCADE,
    file_index  INTEGER NOT NULL,
    name        TEXT NOT NULL,
    size        INTEGER NOT NULL,
    checksum    TEXT,
    PRIMARY KEY (content_id, file_index)
);

CREATE TABLE uploads (
    id          TEXT PRIMARY KEY,
    asset_id    TEXT NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
    content_id  TEXT NOT NULL REFERENCES contents(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users(id),
    chunk_size  INTEGER NOT NULL,
    status      TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

-- Chunks the server holds durably and verified (written, hashed, fsynced).
CREATE TABLE upload_chunks (
    upload_id    TEXT NOT NULL REFERENCES uploads(id) ON DELETE CASCADE,
    file_index   INTEGER NOT NULL,
    chunk_index  INTEGER NOT NULL,
    size         INTEGER NOT NULL,
    hash         TEXT NOT NULL,
    PRIMARY KEY (upload_id, file_index, chunk_index)
);

CREATE TABLE relationships (
    id             TEXT PRIMARY KEY,
    from_asset_id  TEXT NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
    to_asset_id    TEXT NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
    type           TEXT NOT NULL,
    analysis_mode  TEXT,
    qualifiers     TEXT NOT NULL,
    created_by     TEXT NOT NULL REFERENCES users(id),
    created_at     TEXT NOT NULL,
    UNIQUE (from_asset_id, to_asset_id, type)
);
CREATE INDEX relationships_to ON relationships(to_asset_id);
