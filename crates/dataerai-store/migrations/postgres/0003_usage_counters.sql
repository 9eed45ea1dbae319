-- Usage counters on allocations (as SQLite's migration 0004). A quota check
-- used to sum `total_bytes` over every content version of the owner, so each
-- upload cost time in proportion to how many the owner had already. Triggers
-- keep the counters in the same transaction as every change they follow: a
-- version is inserted (`pending`), changes status (`complete`, `aborted`), or
-- goes with its asset. Every such change already holds the owner's
-- allocation row lock (`lock_owner`), so the counters never race.
ALTER TABLE allocations
    ADD COLUMN used_bytes BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN reserved_bytes BIGINT NOT NULL DEFAULT 0;

UPDATE allocations al SET
    used_bytes = COALESCE((SELECT SUM(c.total_bytes) FROM contents c JOIN assets a ON a.id = c.asset_id
                           WHERE a.owner_type = al.owner_type AND a.owner_id = al.owner_id
                             AND c.status = 'complete'), 0),
    reserved_bytes = COALESCE((SELECT SUM(c.total_bytes) FROM contents c JOIN assets a ON a.id = c.asset_id
                               WHERE a.owner_type = al.owner_type AND a.owner_id = al.owner_id
                                 AND c.status = 'pending'), 0);

CREATE FUNCTION contents_usage() RETURNS trigger LANGUAGE plpgsql AS $$
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
        WHERE a.id = NEW.asset_id AND al.owner_type = a.owner_type AND al.owner_id = a.owner_id;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER contents_usage AFTER INSERT OR UPDATE OF status ON contents
    FOR EACH ROW EXECUTE FUNCTION contents_usage();

-- Before the asset row goes: its versions are removed by the cascade after it.
CREATE FUNCTION assets_usage_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE allocations SET
        used_bytes = used_bytes - COALESCE((SELECT SUM(total_bytes) FROM contents
                                            WHERE asset_id = OLD.id AND status = 'complete'), 0),
        reserved_bytes = reserved_bytes - COALESCE((SELECT SUM(total_bytes) FROM contents
                                                    WHERE asset_id = OLD.id AND status = 'pending'), 0)
    WHERE owner_type = OLD.owner_type AND owner_id = OLD.owner_id;
    RETURN OLD;
END
$$;

CREATE TRIGGER assets_usage_delete BEFORE DELETE ON assets
    FOR EACH ROW EXECUTE FUNCTION assets_usage_delete();
