-- A collection's assets listed in any of the web page's orders straight from
-- `asset_collections`: the same columns, triggers and indexes as SQLite's
-- 0013_collection_listing.sql (see there). Text keys sort in byte order
-- (COLLATE "C", as SQLite's BINARY), so both databases list alike.
--
-- Lock order: every write path that changes an asset's keys holds the asset
-- row first (`update_asset` and `move_asset` lock it, a completed or deleted
-- version updates it), so the triggers' updates of `asset_collections` rows
-- add no lock cycle.
ALTER TABLE asset_collections
    ADD COLUMN title TEXT COLLATE "C" NOT NULL DEFAULT '',
    ADD COLUMN record_type TEXT COLLATE "C",
    ADD COLUMN created_at TIMESTAMPTZ,
    ADD COLUMN size_bytes BIGINT NOT NULL DEFAULT 0;

UPDATE asset_collections ac SET title = a.title, record_type = a.record_type, created_at = a.created_at
    FROM assets a WHERE a.id = ac.asset_id;
UPDATE asset_collections ac SET size_bytes = s.size_bytes
    FROM asset_search s WHERE s.asset_id = ac.asset_id;
ALTER TABLE asset_collections ALTER COLUMN created_at SET NOT NULL;

CREATE FUNCTION asset_collections_listing_fill() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    SELECT a.title, a.record_type, a.created_at INTO NEW.title, NEW.record_type, NEW.created_at
        FROM assets a WHERE a.id = NEW.asset_id;
    NEW.size_bytes := COALESCE((SELECT s.size_bytes FROM asset_search s WHERE s.asset_id = NEW.asset_id), 0);
    RETURN NEW;
END
$$;
CREATE TRIGGER asset_collections_listing_fill BEFORE INSERT ON asset_collections
    FOR EACH ROW EXECUTE FUNCTION asset_collections_listing_fill();

CREATE FUNCTION assets_listing_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE asset_collections SET title = NEW.title, record_type = NEW.record_type
        WHERE asset_id = NEW.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER assets_listing_update AFTER UPDATE OF title, record_type ON assets
    FOR EACH ROW
    WHEN (OLD.title IS DISTINCT FROM NEW.title OR OLD.record_type IS DISTINCT FROM NEW.record_type)
    EXECUTE FUNCTION assets_listing_update();

-- `reindex` upserts the row (ON CONFLICT DO UPDATE runs the UPDATE triggers).
CREATE FUNCTION asset_search_listing_size() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE asset_collections SET size_bytes = NEW.size_bytes
        WHERE asset_id = NEW.asset_id AND size_bytes <> NEW.size_bytes;
    RETURN NULL;
END
$$;
CREATE TRIGGER asset_search_listing_insert AFTER INSERT ON asset_search
    FOR EACH ROW EXECUTE FUNCTION asset_search_listing_size();
CREATE TRIGGER asset_search_listing_update AFTER UPDATE OF size_bytes ON asset_search
    FOR EACH ROW WHEN (OLD.size_bytes <> NEW.size_bytes)
    EXECUTE FUNCTION asset_search_listing_size();

CREATE INDEX asset_collections_by_created ON asset_collections(collection_id, created_at, asset_id);
CREATE INDEX asset_collections_by_title ON asset_collections(collection_id, title, asset_id);
CREATE INDEX asset_collections_by_size ON asset_collections(collection_id, size_bytes, asset_id);
CREATE INDEX asset_collections_by_type ON asset_collections(
    collection_id, (record_type IS NULL), record_type, created_at DESC, asset_id DESC);
CREATE INDEX asset_collections_by_type_desc ON asset_collections(
    collection_id, (record_type IS NULL), record_type DESC, created_at DESC, asset_id DESC);
