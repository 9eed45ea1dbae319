-- Idle upload sessions expire (the server's housekeeping task aborts them).
--
-- `last_active_at`: the last request on the session (opened, a chunk, a
-- status query, completion); an open session idle for longer than the
-- server's `upload_session_idle_s` is aborted. Existing sessions start from
-- their creation time.
-- `closed_reason`: why an aborted session was closed — NULL (closed by its
-- user, or before this column existed), `expired` (idle too long) or
-- `member_removed` (its user left the project that owns the asset) — so a
-- client using it again is told why.
ALTER TABLE uploads ADD COLUMN last_active_at TIMESTAMPTZ;
UPDATE uploads SET last_active_at = created_at;
ALTER TABLE uploads ALTER COLUMN last_active_at SET NOT NULL;
ALTER TABLE uploads ADD COLUMN closed_reason TEXT;
-- The expiry scan: open sessions by last activity.
CREATE INDEX uploads_idle ON uploads(status, last_active_at);
