-- The usage counters of an allocation (bytes used and reserved, migration
-- 0003; files, migration 0005; the allocation charged, migration 0009) are
-- now kept by one trigger run per statement on `contents` instead of two per
-- row.
--
-- Why: a batch of small uploads inserts and completes hundreds of versions
-- of one allocation in one transaction. A row trigger updated the
-- allocation row twice per version, and every update of one row in one
-- transaction adds a version of that row which the next update walks past:
-- the cost grew with the square of the batch (about 1 ms per version at 256
-- versions, most of the database's time for a batch). A statement trigger
-- sums the changes per allocation from the statement's transition tables
-- and updates each allocation once.
--
-- The counters stay exact: the sums are the row triggers' deltas added up,
-- and every statement that changes a version still holds the charged
-- allocation's row lock (taken up front in id order by the store).
-- PostgreSQL allows no column list (`UPDATE OF status`) on a trigger with
-- transition tables: the update trigger runs for every `UPDATE` of
-- `contents` (each of them sets `status`), and a row whose state did not
-- change adds nothing (+1 and -1).

DROP TRIGGER contents_usage ON contents;
DROP TRIGGER contents_files ON contents;
DROP FUNCTION contents_usage();
DROP FUNCTION contents_files();

-- Each function adds up, per allocation charged, what the row triggers
-- added one row at a time: a version's state counts +1 as it is now (its
-- new row) and -1 as it was (its old row, for an update); `used_bytes`
-- counts complete versions, `reserved_bytes` pending ones, `file_count`
-- both.
CREATE FUNCTION contents_usage_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE allocations al SET
        used_bytes = al.used_bytes + d.used,
        reserved_bytes = al.reserved_bytes + d.reserved,
        file_count = al.file_count + d.files
    FROM (SELECT asset_allocation(a) AS allocation_id,
                 SUM(CASE WHEN v.status = 'complete' THEN v.total_bytes ELSE 0 END) AS used,
                 SUM(CASE WHEN v.status = 'pending' THEN v.total_bytes ELSE 0 END) AS reserved,
                 SUM(CASE WHEN v.status IN ('pending', 'complete') THEN v.file_count ELSE 0 END)
                     AS files
          FROM new_rows v JOIN assets a ON a.id = v.asset_id
          GROUP BY 1) d
    WHERE al.id = d.allocation_id AND (d.used <> 0 OR d.reserved <> 0 OR d.files <> 0);
    RETURN NULL;
END
$$;

CREATE FUNCTION contents_usage_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE allocations al SET
        used_bytes = al.used_bytes + d.used,
        reserved_bytes = al.reserved_bytes + d.reserved,
        file_count = al.file_count + d.files
    FROM (SELECT asset_allocation(a) AS allocation_id,
                 SUM(CASE WHEN v.status = 'complete' THEN v.sign * v.total_bytes ELSE 0 END) AS used,
                 SUM(CASE WHEN v.status = 'pending' THEN v.sign * v.total_bytes ELSE 0 END) AS reserved,
                 SUM(CASE WHEN v.status IN ('pending', 'complete') THEN v.sign * v.file_count ELSE 0 END)
                     AS files
          FROM (SELECT asset_id, status, total_bytes, file_count, 1 AS sign FROM new_rows
                UNION ALL
                SELECT asset_id, status, total_bytes, file_count, -1 AS sign FROM old_rows) v
               JOIN assets a ON a.id = v.asset_id
          GROUP BY 1) d
    WHERE al.id = d.allocation_id AND (d.used <> 0 OR d.reserved <> 0 OR d.files <> 0);
    RETURN NULL;
END
$$;

CREATE TRIGGER contents_usage_insert AFTER INSERT ON contents
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION contents_usage_insert();
CREATE TRIGGER contents_usage_update AFTER UPDATE ON contents
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION contents_usage_update();
