-- Search (docs/search.md): the same tables as SQLite's 0008_search.sql, with
-- a generated tsvector ('simple' configuration: lower-case words, no stemming,
-- the words `search::index` wrote) and a GIN index instead of FTS5.
ALTER TABLE assets ADD COLUMN record_type TEXT;
CREATE INDEX assets_record_type ON assets(record_type);
CREATE INDEX assets_created ON assets(created_at);
CREATE INDEX assets_updated ON assets(updated_at);
CREATE INDEX assets_created_by ON assets(created_by);
CREATE INDEX asset_collections_asset ON asset_collections(asset_id);
CREATE INDEX collections_parent ON collections(parent_id);

CREATE TABLE asset_search (
    asset_id    TEXT PRIMARY KEY REFERENCES assets(id) ON DELETE CASCADE,
    body        TEXT NOT NULL,
    size_bytes  BIGINT NOT NULL,
    body_vector TSVECTOR GENERATED ALWAYS AS (to_tsvector('simple', body)) STORED
);
CREATE INDEX asset_search_size ON asset_search(size_bytes);
CREATE INDEX asset_search_body ON asset_search USING GIN (body_vector);

CREATE TABLE asset_tags (
    asset_id  TEXT NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
    tag       TEXT NOT NULL,
    PRIMARY KEY (tag, asset_id)
);
CREATE INDEX asset_tags_asset ON asset_tags(asset_id);

CREATE TABLE asset_fields (
    asset_id  TEXT NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
    path      TEXT NOT NULL,
    num       DOUBLE PRECISION,
    txt       TEXT,
    flag      BOOLEAN
);
CREATE INDEX asset_fields_num ON asset_fields(path, num);
CREATE INDEX asset_fields_txt ON asset_fields(path, txt);
CREATE INDEX asset_fields_asset ON asset_fields(asset_id);
