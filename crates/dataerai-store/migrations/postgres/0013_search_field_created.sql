-- A metadata term can drive a search as a tag does: the same column and
-- indexes as SQLite's 0014_search_field_created.sql (see there).
ALTER TABLE asset_fields ADD COLUMN created_at TIMESTAMPTZ;
UPDATE asset_fields f SET created_at = s.created_at
    FROM asset_search s WHERE s.asset_id = f.asset_id;
ALTER TABLE asset_fields ALTER COLUMN created_at SET NOT NULL;
DROP INDEX asset_fields_num;
DROP INDEX asset_fields_txt;
DROP INDEX asset_fields_asset;
CREATE INDEX asset_fields_num ON asset_fields(path, num, owner, created_at, asset_id);
CREATE INDEX asset_fields_txt ON asset_fields(path, txt, owner, created_at, asset_id);
CREATE INDEX asset_fields_asset ON asset_fields(asset_id, path, num, txt, flag);
