-- Uploads being started: a row is written before the daemon asks the server
-- for anything (create the asset, open the session) and learns the asset and
-- upload ids as they come back. Journaling the transfer deletes the row (in the
-- same transaction). A row left behind (the daemon died, or the start failed
-- and its clean-up could not reach the server) is cleaned up by the daemon:
-- abort the session, delete the asset the start created.
CREATE TABLE upload_starts (
    start_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    asset_id TEXT,
    created_asset INTEGER NOT NULL,
    upload_id TEXT,
    -- 1 once nobody is starting it any more: it only waits to be cleaned up.
    abandoned INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE INDEX upload_starts_upload ON upload_starts (upload_id);
