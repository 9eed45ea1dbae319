-- The read permission inside the search index: every index row carries its
-- asset's owner (`owner_type || ':' || owner_id`, e.g. `project:<id>`) and
-- the tag and text rows its creation time, so a term and the caller's
-- readable owners are one index range, counted without reading `assets`,
-- and the newest matches of a tag (or of the whole catalogue) are read in
-- index order (`search::sql`). `search::index` writes these columns with the
-- rest of an asset's index rows; an asset's owner and creation time never
-- change after it is created.
ALTER TABLE asset_search ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE asset_search ADD COLUMN created_at TEXT NOT NULL DEFAULT '';
ALTER TABLE asset_tags ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE asset_tags ADD COLUMN created_at TEXT NOT NULL DEFAULT '';
ALTER TABLE asset_fields ADD COLUMN owner TEXT NOT NULL DEFAULT '';

-- Only a new body changes the full-text index (the old trigger rewrote it
-- on any update of the row, e.g. the backfill below).
DROP TRIGGER asset_search_au;
CREATE TRIGGER asset_search_au AFTER UPDATE OF body ON asset_search BEGIN
    INSERT INTO asset_search_fts(asset_search_fts, rowid, body) VALUES ('delete', old.rowid, old.body);
    INSERT INTO asset_search_fts(rowid, body) VALUES (new.rowid, new.body);
END;

UPDATE asset_search SET (owner, created_at) =
    (SELECT a.owner_type || ':' || a.owner_id, a.created_at FROM assets a WHERE a.id = asset_search.asset_id);
UPDATE asset_tags SET (owner, created_at) =
    (SELECT a.owner_type || ':' || a.owner_id, a.created_at FROM assets a WHERE a.id = asset_tags.asset_id);
UPDATE asset_fields SET owner =
    (SELECT a.owner_type || ':' || a.owner_id FROM assets a WHERE a.id = asset_fields.asset_id);

-- Newest first over the whole catalogue (browse), the owner read from the index.
CREATE INDEX asset_search_created ON asset_search(created_at, asset_id, owner);
-- A tag's assets newest first, the owner read from the index.
CREATE INDEX asset_tags_created ON asset_tags(tag, created_at, asset_id, owner);
-- Metadata comparisons with the owner in the index (replacing the indexes
-- without it).
DROP INDEX asset_fields_num;
DROP INDEX asset_fields_txt;
CREATE INDEX asset_fields_num ON asset_fields(path, num, owner, asset_id);
CREATE INDEX asset_fields_txt ON asset_fields(path, txt, owner, asset_id);
