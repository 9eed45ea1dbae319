-- An asset may be charged to an allocation other than its owner's (a personal
-- upload charged to a project's allocation the uploader may write to).
--
-- `assets.allocation_id`: the allocation the asset's bytes and files count
-- against; NULL means its owner's allocation (every asset before this
-- migration, so nothing is backfilled). It never changes after the asset is
-- created, so later versions keep charging the same allocation.
--
-- The usage trigger functions of migrations 0003 (bytes) and 0005 (files)
-- found the allocation by the asset's owner; they now charge
-- `COALESCE(assets.allocation_id, <the owner's allocation>)`. Every change
-- they follow holds that allocation's row lock (and the owner's), taken up
-- front in id order by the store, so the counters never race.
ALTER TABLE assets ADD COLUMN allocation_id TEXT REFERENCES allocations(id);
CREATE INDEX assets_allocation ON assets(allocation_id) WHERE allocation_id IS NOT NULL;

-- The allocation an asset is charged to.
CREATE FUNCTION asset_allocation(asset assets) RETURNS TEXT LANGUAGE sql STABLE AS $$
    SELECT COALESCE(asset.allocation_id,
                    (SELECT o.id FROM allocations o
                     WHERE o.owner_type = asset.owner_type AND o.owner_id = asset.owner_id))
$$;

CREATE OR REPLACE FUNCTION contents_usage() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    d_used BIGINT := 0;
    d_reserved BIGINT := 0;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        d_used := d_used - CASE WHEN OLD.status = 'complete' THEN OLD.total_bytes ELSE 0 END;
        d_reserved := d_reserved - CASE WHEN OLD.status = 'pending' THEN OLD.total_bytes ELSE 0 END;
    END IF;
    d_used := d_used + CASE WHEN NEW.status = 'complete' THEN NEW.total_bytes ELSE 0 END;
    d_reserved := d_reserved + CASE WHEN NEW.status = 'pending' THEN NEW.total_bytes ELSE 0 END;
    IF d_used <> 0 OR d_reserved <> 0 THEN
        UPDATE allocations al
        SET used_bytes = al.used_bytes + d_used, reserved_bytes = al.reserved_bytes + d_reserved
        FROM assets a
        WHERE a.id = NEW.asset_id AND al.id = asset_allocation(a);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION assets_usage_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE allocations SET
        used_bytes = used_bytes - COALESCE((SELECT SUM(total_bytes) FROM contents
                                            WHERE asset_id = OLD.id AND status = 'complete'), 0),
        reserved_bytes = reserved_bytes - COALESCE((SELECT SUM(total_bytes) FROM contents
                                                    WHERE asset_id = OLD.id AND status = 'pending'), 0)
    WHERE id = asset_allocation(OLD);
    RETURN OLD;
END
$$;

CREATE OR REPLACE FUNCTION contents_files() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    d BIGINT := 0;
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.status IN ('pending', 'complete') THEN
        d := d - OLD.file_count;
    END IF;
    IF NEW.status IN ('pending', 'complete') THEN
        d := d + NEW.file_count;
    END IF;
    IF d <> 0 THEN
        UPDATE allocations al
        SET file_count = al.file_count + d
        FROM assets a
        WHERE a.id = NEW.asset_id AND al.id = asset_allocation(a);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION assets_files_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE allocations SET
        file_count = file_count - COALESCE((SELECT SUM(file_count) FROM contents
                                            WHERE asset_id = OLD.id AND status IN ('pending', 'complete')), 0)
    WHERE id = asset_allocation(OLD);
    RETURN OLD;
END
$$;
