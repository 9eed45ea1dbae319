-- Usage counters on allocations. A quota check used to sum `total_bytes` over
-- every content version of the owner, so each upload cost time in proportion
-- to how many the owner had already (quadratic over many small files). The
-- counters are kept by triggers, in the same transaction as every change they
-- follow: a version is inserted (`pending`), changes status (`complete`,
-- `aborted`), or goes with its asset.
ALTER TABLE allocations ADD COLUMN used_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE allocations ADD COLUMN reserved_bytes INTEGER NOT NULL DEFAULT 0;

UPDATE allocations SET
    used_bytes = COALESCE((SELECT SUM(c.total_bytes) FROM contents c JOIN assets a ON a.id = c.asset_id
                           WHERE a.owner_type = allocations.owner_type AND a.owner_id = allocations.owner_id
                             AND c.status = 'complete'), 0),
    reserved_bytes = COALESCE((SELECT SUM(c.total_bytes) FROM contents c JOIN assets a ON a.id = c.asset_id
                               WHERE a.owner_type = allocations.owner_type AND a.owner_id = allocations.owner_id
                                 AND c.status = 'pending'), 0);

CREATE TRIGGER contents_usage_insert AFTER INSERT ON contents
BEGIN
    UPDATE allocations SET
        used_bytes = used_bytes + CASE WHEN NEW.status = 'complete' THEN NEW.total_bytes ELSE 0 END,
        reserved_bytes = reserved_bytes + CASE WHEN NEW.status = 'pending' THEN NEW.total_bytes ELSE 0 END
    WHERE (owner_type, owner_id) = (SELECT owner_type, owner_id FROM assets WHERE id = NEW.asset_id);
END;

CREATE TRIGGER contents_usage_update AFTER UPDATE OF status ON contents
BEGIN
    UPDATE allocations SET
        used_bytes = used_bytes
            + CASE WHEN NEW.status = 'complete' THEN NEW.total_bytes ELSE 0 END
            - CASE WHEN OLD.status = 'complete' THEN OLD.total_bytes ELSE 0 END,
        reserved_bytes = reserved_bytes
            + CASE WHEN NEW.status = 'pending' THEN NEW.total_bytes ELSE 0 END
            - CASE WHEN OLD.status = 'pending' THEN OLD.total_bytes ELSE 0 END
    WHERE (owner_type, owner_id) = (SELECT owner_type, owner_id FROM assets WHERE id = NEW.asset_id);
END;

-- Before the asset row goes: its versions are removed by the cascade after it.
CREATE TRIGGER assets_usage_delete BEFORE DELETE ON assets
BEGIN
    UPDATE allocations SET
        used_bytes = used_bytes - COALESCE((SELECT SUM(total_bytes) FROM contents
                                            WHERE asset_id = OLD.id AND status = 'complete'), 0),
        reserved_bytes = reserved_bytes - COALESCE((SELECT SUM(total_bytes) FROM contents
                                                    WHERE asset_id = OLD.id AND status = 'pending'), 0)
    WHERE owner_type = OLD.owner_type AND owner_id = OLD.owner_id;
END;
