-- An asset's record type in its index rows: the same columns and indexes as
-- SQLite's 0017_search_record_type.sql (see there).
ALTER TABLE asset_search ADD COLUMN record_type TEXT;
ALTER TABLE asset_tags ADD COLUMN record_type TEXT;
UPDATE asset_search s SET record_type = a.record_type FROM assets a WHERE a.id = s.asset_id;
UPDATE asset_tags t SET record_type = a.record_type FROM assets a WHERE a.id = t.asset_id;
DROP INDEX asset_search_created;
CREATE INDEX asset_search_created ON asset_search(created_at, asset_id, owner, record_type);
DROP INDEX asset_tags_created;
CREATE INDEX asset_tags_created ON asset_tags(tag, created_at, asset_id, owner, record_type);
