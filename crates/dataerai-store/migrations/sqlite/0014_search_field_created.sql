-- A metadata term can drive a search as a tag does (`search::sql`): each
-- `asset_fields` row carries its asset's creation time (as `asset_tags` and
-- `asset_search` do), and the comparison indexes hold it, so a range's matches
-- are put newest first from the index alone (no asset or `asset_search` row
-- read). `asset_fields_asset` gains the path and values, so "does this asset
-- have this field value" is one index probe (a term checked per candidate
-- when another term drives).
ALTER TABLE asset_fields ADD COLUMN created_at TEXT NOT NULL DEFAULT '';
UPDATE asset_fields SET created_at =
    (SELECT s.created_at FROM asset_search s WHERE s.asset_id = asset_fields.asset_id);
DROP INDEX asset_fields_num;
DROP INDEX asset_fields_txt;
DROP INDEX asset_fields_asset;
CREATE INDEX asset_fields_num ON asset_fields(path, num, owner, created_at, asset_id);
CREATE INDEX asset_fields_txt ON asset_fields(path, txt, owner, created_at, asset_id);
CREATE INDEX asset_fields_asset ON asset_fields(asset_id, path, num, txt, flag);
