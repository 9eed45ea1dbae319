-- An asset's record type in its `asset_search` and `asset_tags` rows (as the
-- owner and creation time already are), and in the indexes a search walks:
-- `type:…` beside a driving tag or words, or on its own, is then checked on
-- the driving index row instead of one `assets` row lookup per candidate
-- (`search::sql`). `search::index` rewrites these rows whenever the asset
-- changes, so the copy follows a new record type.
ALTER TABLE asset_search ADD COLUMN record_type TEXT;
ALTER TABLE asset_tags ADD COLUMN record_type TEXT;
UPDATE asset_search SET record_type =
    (SELECT a.record_type FROM assets a WHERE a.id = asset_search.asset_id);
UPDATE asset_tags SET record_type =
    (SELECT a.record_type FROM assets a WHERE a.id = asset_tags.asset_id);
DROP INDEX asset_search_created;
CREATE INDEX asset_search_created ON asset_search(created_at, asset_id, owner, record_type);
DROP INDEX asset_tags_created;
CREATE INDEX asset_tags_created ON asset_tags(tag, created_at, asset_id, owner, record_type);
