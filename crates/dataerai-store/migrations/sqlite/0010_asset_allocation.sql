-- An asset may be charged to an allocation other than its owner's (a personal
-- upload charged to a project's allocation the uploader may write to).
--
-- `assets.allocation_id`: the allocation the asset's bytes and files count
-- against; NULL means its owner's allocation (every asset before this
-- migration, so nothing is backfilled). It never changes after the asset is
-- created, so later versions keep charging the same allocation.
--
-- The usage triggers of migrations 0004 (bytes) and 0006 (files) found the
-- allocation by the asset's owner; they are replaced by triggers that charge
-- `COALESCE(assets.allocation_id, <the owner's allocation>)`, bytes and files
-- in one statement.
ALTER TABLE assets ADD COLUMN allocation_id TEXT REFERENCES allocations(id);
-- Assets charged to an allocation not their owner's (few: NULL is not indexed
-- by the partial index).
CREATE INDEX assets_allocation ON assets(allocation_id) WHERE allocation_id IS NOT NULL;

DROP TRIGGER contents_usage_insert;
DROP TRIGGER contents_usage_update;
DROP TRIGGER assets_usage_delete;
DROP TRIGGER contents_files_insert;
DROP TRIGGER contents_files_update;
DROP TRIGGER assets_files_delete;

CREATE TRIGGER contents_usage_insert AFTER INSERT ON contents
BEGIN
    UPDATE allocations SET
        used_bytes = used_bytes + CASE WHEN NEW.status = 'complete' THEN NEW.total_bytes ELSE 0 END,
        reserved_bytes = reserved_bytes + CASE WHEN NEW.status = 'pending' THEN NEW.total_bytes ELSE 0 END,
        file_count = file_count + CASE WHEN NEW.status IN ('pending', 'complete') THEN NEW.file_count ELSE 0 END
    WHERE id = (SELECT COALESCE(a.allocation_id,
                                (SELECT o.id FROM allocations o
                                 WHERE o.owner_type = a.owner_type AND o.owner_id = a.owner_id))
                FROM assets a WHERE a.id = NEW.asset_id);
END;

CREATE TRIGGER contents_usage_update AFTER UPDATE OF status ON contents
BEGIN
    UPDATE allocations SET
        used_bytes = used_bytes
            + CASE WHEN NEW.status = 'complete' THEN NEW.total_bytes ELSE 0 END
            - CASE WHEN OLD.status = 'complete' THEN OLD.total_bytes ELSE 0 END,
        reserved_bytes = reserved_bytes
            + CASE WHEN NEW.status = 'pending' THEN NEW.total_bytes ELSE 0 END
            - CASE WHEN OLD.status = 'pending' THEN OLD.total_bytes ELSE 0 END,
        file_count = file_count
            + CASE WHEN NEW.status IN ('pending', 'complete') THEN NEW.file_count ELSE 0 END
            - CASE WHEN OLD.status IN ('pending', 'complete') THEN OLD.file_count ELSE 0 END
    WHERE id = (SELECT COALESCE(a.allocation_id,
                                (SELECT o.id FROM allocations o
                                 WHERE o.owner_type = a.owner_type AND o.owner_id = a.owner_id))
                FROM assets a WHERE a.id = NEW.asset_id);
END;

-- Before the asset row goes: its versions are removed by the cascade after it.
CREATE TRIGGER assets_usage_delete BEFORE DELETE ON assets
BEGIN
    UPDATE allocations SET
        used_bytes = used_bytes - COALESCE((SELECT SUM(total_bytes) FROM contents
                                            WHERE asset_id = OLD.id AND status = 'complete'), 0),
        reserved_bytes = reserved_bytes - COALESCE((SELECT SUM(total_bytes) FROM contents
                                                    WHERE asset_id = OLD.id AND status = 'pending'), 0),
        file_count = file_count - COALESCE((SELECT SUM(file_count) FROM contents
                                            WHERE asset_id = OLD.id AND status IN ('pending', 'complete')), 0)
    WHERE id = COALESCE(OLD.allocation_id,
                        (SELECT o.id FROM allocations o
                         WHERE o.owner_type = OLD.owner_type AND o.owner_id = OLD.owner_id));
END;
