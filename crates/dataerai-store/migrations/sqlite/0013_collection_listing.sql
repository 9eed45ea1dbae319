-- A collection's assets listed in any of the web page's orders straight from
-- `asset_collections` (`meta::collection_listing`): each row carries the
-- sort keys of its asset — title, record type and creation time (from
-- `assets`), size (the latest complete version's, from `asset_search`, as a
-- search sorts by) — and one index per order starts with the collection, so
-- a page is one index range read in order (OFFSET steps over index entries,
-- never asset rows) and the total is a count of that range.
--
-- Triggers keep the keys with their asset on every write path, the bulk
-- loaders included: a new row copies them; a change of an asset's title or
-- record type, or of its indexed size, is copied to its rows. Deleting an
-- asset removes its rows (ON DELETE CASCADE); a move deletes and inserts.
ALTER TABLE asset_collections ADD COLUMN title TEXT NOT NULL DEFAULT '';
ALTER TABLE asset_collections ADD COLUMN record_type TEXT;
ALTER TABLE asset_collections ADD COLUMN created_at TEXT NOT NULL DEFAULT '';
ALTER TABLE asset_collections ADD COLUMN size_bytes INTEGER NOT NULL DEFAULT 0;

UPDATE asset_collections SET
    (title, record_type, created_at) =
        (SELECT a.title, a.record_type, a.created_at FROM assets a WHERE a.id = asset_collections.asset_id),
    size_bytes = COALESCE(
        (SELECT s.size_bytes FROM asset_search s WHERE s.asset_id = asset_collections.asset_id), 0);

CREATE TRIGGER asset_collections_listing_ai AFTER INSERT ON asset_collections BEGIN
    UPDATE asset_collections SET
        (title, record_type, created_at) =
            (SELECT a.title, a.record_type, a.created_at FROM assets a WHERE a.id = new.asset_id),
        size_bytes = COALESCE(
            (SELECT s.size_bytes FROM asset_search s WHERE s.asset_id = new.asset_id), 0)
    WHERE asset_id = new.asset_id AND collection_id = new.collection_id;
END;

CREATE TRIGGER assets_listing_au AFTER UPDATE OF title, record_type ON assets
WHEN old.title IS NOT new.title OR old.record_type IS NOT new.record_type BEGIN
    UPDATE asset_collections SET title = new.title, record_type = new.record_type
    WHERE asset_id = new.id;
END;

-- `reindex` upserts the row (ON CONFLICT DO UPDATE runs the UPDATE triggers).
CREATE TRIGGER asset_search_listing_ai AFTER INSERT ON asset_search BEGIN
    UPDATE asset_collections SET size_bytes = new.size_bytes
    WHERE asset_id = new.asset_id AND size_bytes <> new.size_bytes;
END;
CREATE TRIGGER asset_search_listing_au AFTER UPDATE OF size_bytes ON asset_search
WHEN old.size_bytes <> new.size_bytes BEGIN
    UPDATE asset_collections SET size_bytes = new.size_bytes WHERE asset_id = new.asset_id;
END;

-- One index per order of `CollectionSort` (a descending order reads the same
-- index backwards: ties go by asset id in the order's direction). A record
-- type order keeps untyped assets last in both directions and the newest
-- first within a type, so it needs one index per direction.
CREATE INDEX asset_collections_by_created ON asset_collections(collection_id, created_at, asset_id);
CREATE INDEX asset_collections_by_title ON asset_collections(collection_id, title, asset_id);
CREATE INDEX asset_collections_by_size ON asset_collections(collection_id, size_bytes, asset_id);
CREATE INDEX asset_collections_by_type ON asset_collections(
    collection_id, (record_type IS NULL), record_type, created_at DESC, asset_id DESC);
CREATE INDEX asset_collections_by_type_desc ON asset_collections(
    collection_id, (record_type IS NULL), record_type DESC, created_at DESC, asset_id DESC);
