-- The journal as written before it carried a schema version (PRAGMA
-- user_version 0). IF NOT EXISTS: on those files this migration finds every
-- table in place and only stamps the version.
CREATE TABLE IF NOT EXISTS transfers (
    transfer_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    asset_id TEXT NOT NULL,
    content_id TEXT,
    local_path TEXT NOT NULL,
    bytes_done INTEGER NOT NULL,
    bytes_total INTEGER NOT NULL,
    chunk_count INTEGER NOT NULL,
    file_count INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    result TEXT,
    error TEXT,
    batch_id TEXT,
    spec TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS transfers_owner ON transfers (owner, created_at);
CREATE TABLE IF NOT EXISTS chunks (
    transfer_id TEXT NOT NULL,
    file_index INTEGER NOT NULL,
    chunk_index INTEGER NOT NULL,
    len INTEGER NOT NULL,
    PRIMARY KEY (transfer_id, file_index, chunk_index)
);
CREATE TABLE IF NOT EXISTS done_files (
    transfer_id TEXT NOT NULL,
    file_index INTEGER NOT NULL,
    PRIMARY KEY (transfer_id, file_index)
);
