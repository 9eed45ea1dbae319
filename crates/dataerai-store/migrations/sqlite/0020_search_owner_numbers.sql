-- The read permission of a text search without reading each match's
-- `asset_search` row: every owner key gets a small number
-- (`search_owners`), and `asset_search_owner` holds, per `asset_search`
-- rowid (the full-text index's rowid), its owner's number. A document with
-- the words is then checked for the caller's read permission in a table of
-- about 10 bytes per asset (10 MB at a million assets) instead of in the
-- `asset_search` row with its body: at 1,000,000 assets the two-word
-- query's statement went from about 45 to 36 ms of CPU (docs/performance.md,
-- "A narrow owner table for text search"). `meta::search::statements`
-- reads it when the words drive and nothing else filters; the triggers
-- below keep it with `asset_search`.
CREATE TABLE search_owners (
    no    INTEGER PRIMARY KEY,
    owner TEXT NOT NULL UNIQUE
);
CREATE TABLE asset_search_owner (
    id       INTEGER PRIMARY KEY,   -- asset_search.rowid
    owner_no INTEGER NOT NULL
);

INSERT INTO search_owners(owner) SELECT DISTINCT owner FROM asset_search ORDER BY owner;
INSERT INTO asset_search_owner(id, owner_no)
    SELECT s.rowid, o.no FROM asset_search s JOIN search_owners o ON o.owner = s.owner;

CREATE TRIGGER asset_search_owner_ai AFTER INSERT ON asset_search BEGIN
    INSERT OR IGNORE INTO search_owners(owner) VALUES (new.owner);
    INSERT OR REPLACE INTO asset_search_owner(id, owner_no)
        VALUES (new.rowid, (SELECT no FROM search_owners WHERE owner = new.owner));
END;
CREATE TRIGGER asset_search_owner_au AFTER UPDATE OF owner ON asset_search
WHEN new.owner <> old.owner BEGIN
    INSERT OR IGNORE INTO search_owners(owner) VALUES (new.owner);
    UPDATE asset_search_owner SET owner_no = (SELECT no FROM search_owners WHERE owner = new.owner)
        WHERE id = new.rowid;
END;
CREATE TRIGGER asset_search_owner_ad AFTER DELETE ON asset_search BEGIN
    DELETE FROM asset_search_owner WHERE id = old.rowid;
END;
