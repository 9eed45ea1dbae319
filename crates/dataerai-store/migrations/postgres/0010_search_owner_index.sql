-- The read permission inside the search index: the same columns and indexes
-- as SQLite's 0011_search_owner_index.sql (see there).
ALTER TABLE asset_search ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE asset_search ADD COLUMN created_at TIMESTAMPTZ;
ALTER TABLE asset_tags ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE asset_tags ADD COLUMN created_at TIMESTAMPTZ;
ALTER TABLE asset_fields ADD COLUMN owner TEXT NOT NULL DEFAULT '';

UPDATE asset_search s SET owner = a.owner_type || ':' || a.owner_id, created_at = a.created_at
    FROM assets a WHERE a.id = s.asset_id;
UPDATE asset_tags t SET owner = a.owner_type || ':' || a.owner_id, created_at = a.created_at
    FROM assets a WHERE a.id = t.asset_id;
UPDATE asset_fields f SET owner = a.owner_type || ':' || a.owner_id
    FROM assets a WHERE a.id = f.asset_id;
ALTER TABLE asset_search ALTER COLUMN created_at SET NOT NULL;
ALTER TABLE asset_tags ALTER COLUMN created_at SET NOT NULL;

CREATE INDEX asset_search_created ON asset_search(created_at, asset_id, owner);
CREATE INDEX asset_tags_created ON asset_tags(tag, created_at, asset_id, owner);
DROP INDEX asset_fields_num;
DROP INDEX asset_fields_txt;
CREATE INDEX asset_fields_num ON asset_fields(path, num, owner, asset_id);
CREATE INDEX asset_fields_txt ON asset_fields(path, txt, owner, asset_id);
