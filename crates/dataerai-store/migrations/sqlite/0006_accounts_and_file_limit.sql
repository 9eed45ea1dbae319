-- Account status for server administrators and project invitations; a file
-- limit per allocation (below).
--
-- `disabled_at`: set by `dataerai-server admin disable-user`; a disabled user
-- cannot sign in and their tokens and web sessions stop working (the lookups
-- skip them). `invited`: the account was made when a project admin added an
-- email nobody had an account for; it has no password and becomes an ordinary
-- account when a server administrator creates the user with that email.
ALTER TABLE users ADD COLUMN disabled_at TEXT;
ALTER TABLE users ADD COLUMN invited INTEGER NOT NULL DEFAULT 0;

-- A file limit per allocation, like a file-system inode quota: every file of
-- a pending or complete content version counts, whatever its size, so a
-- session of many zero-byte files is bounded even though it costs no bytes.
-- `file_count` is kept by triggers like the byte counters (migration 0004), in
-- the same transaction as every change of a version; `contents.file_count` is
-- the version's number of files, written with the row.
ALTER TABLE contents ADD COLUMN file_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE allocations ADD COLUMN file_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE allocations ADD COLUMN max_files INTEGER NOT NULL DEFAULT 1000000;

UPDATE contents SET file_count = (SELECT COUNT(*) FROM content_files f WHERE f.content_id = contents.id);
UPDATE allocations SET file_count =
    COALESCE((SELECT SUM(c.file_count) FROM contents c JOIN assets a ON a.id = c.asset_id
              WHERE a.owner_type = allocations.owner_type AND a.owner_id = allocations.owner_id
                AND c.status IN ('pending', 'complete')), 0);

CREATE TRIGGER contents_files_insert AFTER INSERT ON contents
BEGIN
    UPDATE allocations SET
        file_count = file_count + CASE WHEN NEW.status IN ('pending', 'complete') THEN NEW.file_count ELSE 0 END
    WHERE (owner_type, owner_id) = (SELECT owner_type, owner_id FROM assets WHERE id = NEW.asset_id);
END;

CREATE TRIGGER contents_files_update AFTER UPDATE OF status ON contents
BEGIN
    UPDATE allocations SET
        file_count = file_count
            + CASE WHEN NEW.status IN ('pending', 'complete') THEN NEW.file_count ELSE 0 END
            - CASE WHEN OLD.status IN ('pending', 'complete') THEN OLD.file_count ELSE 0 END
    WHERE (owner_type, owner_id) = (SELECT owner_type, owner_id FROM assets WHERE id = NEW.asset_id);
END;

-- Before the asset row goes: its versions are removed by the cascade after it.
CREATE TRIGGER assets_files_delete BEFORE DELETE ON assets
BEGIN
    UPDATE allocations SET
        file_count = file_count - COALESCE((SELECT SUM(file_count) FROM contents
                                            WHERE asset_id = OLD.id AND status IN ('pending', 'complete')), 0)
    WHERE owner_type = OLD.owner_type AND owner_id = OLD.owner_id;
END;
