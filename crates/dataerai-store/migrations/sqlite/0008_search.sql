-- Search (docs/search.md). An asset's record type, and three index tables the
-- store rewrites whenever an asset or its current version changes
-- (`search::index`): one row of text and size per asset, its tags, and its
-- metadata flattened to one row per leaf value. Rows go with their asset
-- (ON DELETE CASCADE); assets indexed before this migration are indexed when
-- the store opens.
ALTER TABLE assets ADD COLUMN record_type TEXT;
CREATE INDEX assets_record_type ON assets(record_type);
CREATE INDEX assets_created ON assets(created_at);
CREATE INDEX assets_updated ON assets(updated_at);
CREATE INDEX assets_created_by ON assets(created_by);
CREATE INDEX asset_collections_asset ON asset_collections(asset_id);
CREATE INDEX collections_parent ON collections(parent_id);

-- `body`: title, description, alias, tags and file names as lower-case words
-- separated by spaces (so both databases' full-text parsers see the same words).
CREATE TABLE asset_search (
    asset_id    TEXT PRIMARY KEY REFERENCES assets(id) ON DELETE CASCADE,
    body        TEXT NOT NULL,
    size_bytes  INTEGER NOT NULL
);
CREATE INDEX asset_search_size ON asset_search(size_bytes);

CREATE VIRTUAL TABLE asset_search_fts USING fts5(
    body, content='asset_search', content_rowid='rowid',
    tokenize='unicode61 remove_diacritics 0'
);
CREATE TRIGGER asset_search_ai AFTER INSERT ON asset_search BEGIN
    INSERT INTO asset_search_fts(rowid, body) VALUES (new.rowid, new.body);
END;
CREATE TRIGGER asset_search_ad AFTER DELETE ON asset_search BEGIN
    INSERT INTO asset_search_fts(asset_search_fts, rowid, body) VALUES ('delete', old.rowid, old.body);
END;
CREATE TRIGGER asset_search_au AFTER UPDATE ON asset_search BEGIN
    INSERT INTO asset_search_fts(asset_search_fts, rowid, body) VALUES ('delete', old.rowid, old.body);
    INSERT INTO asset_search_fts(rowid, body) VALUES (new.rowid, new.body);
END;

CREATE TABLE asset_tags (
    asset_id  TEXT NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
    tag       TEXT NOT NULL,
    PRIMARY KEY (tag, asset_id)
);
CREATE INDEX asset_tags_asset ON asset_tags(asset_id);

-- One row per leaf of the metadata (array elements share their key's path):
-- `path` is the keys joined by '.', and exactly one of num, txt, flag is set.
CREATE TABLE asset_fields (
    asset_id  TEXT NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
    path      TEXT NOT NULL,
    num       REAL,
    txt       TEXT,
    flag      INTEGER
);
CREATE INDEX asset_fields_num ON asset_fields(path, num);
CREATE INDEX asset_fields_txt ON asset_fields(path, txt);
CREATE INDEX asset_fields_asset ON asset_fields(asset_id);
