-- Account status for server administrators and project invitations; a file
-- limit per allocation (below).
--
-- `disabled_at`: set by `dataerai-server admin disable-user`; a disabled user
-- cannot sign in and their tokens and web sessions stop working (the lookups
-- skip them). `invited`: the account was made when a project admin added an
-- email nobody had an account for; it has no password and becomes an ordinary
-- account when a server administrator creates the user with that email.
ALTER TABLE users ADD COLUMN disabled_at TIMESTAMPTZ;
ALTER TABLE users ADD COLUMN invited BOOLEAN NOT NULL DEFAULT FALSE;

-- A file limit per allocation, like a file-system inode quota: every file of
-- a pending or complete content version counts, whatever its size, so a
-- session of many zero-byte files is bounded even though it costs no bytes.
-- `file_count` is kept by triggers like the byte counters (migration 0003), in
-- the same transaction as every change of a version (which holds the owner's
-- allocation row lock); `contents.file_count` is the version's number of
-- files, written with the row.
ALTER TABLE contents ADD COLUMN file_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE allocations
    ADD COLUMN file_count BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN max_files BIGINT NOT NULL DEFAULT 1000000;

UPDATE contents c SET file_count = (SELECT COUNT(*) FROM content_files f WHERE f.content_id = c.id);
UPDATE allocations al SET file_count =
    COALESCE((SELECT SUM(c.file_count) FROM contents c JOIN assets a ON a.id = c.asset_id
              WHERE a.owner_type = al.owner_type AND a.owner_id = al.owner_id
                AND c.status IN ('pending', 'complete')), 0);

CREATE FUNCTION contents_files() RETURNS trigger LANGUAGE plpgsql AS $$
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
        WHERE a.id = NEW.asset_id AND al.owner_type = a.owner_type AND al.owner_id = a.owner_id;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER contents_files AFTER INSERT OR UPDATE OF status ON contents
    FOR EACH ROW EXECUTE FUNCTION contents_files();

-- Before the asset row goes: its versions are removed by the cascade after it.
CREATE FUNCTION assets_files_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE allocations SET
        file_count = file_count - COALESCE((SELECT SUM(file_count) FROM contents
                                            WHERE asset_id = OLD.id AND status IN ('pending', 'complete')), 0)
    WHERE owner_type = OLD.owner_type AND owner_id = OLD.owner_id;
    RETURN OLD;
END
$$;

CREATE TRIGGER assets_files_delete BEFORE DELETE ON assets
    FOR EACH ROW EXECUTE FUNCTION assets_files_delete();
