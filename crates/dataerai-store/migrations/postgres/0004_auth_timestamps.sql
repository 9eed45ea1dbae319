-- The sign-in tables kept their times as integer milliseconds since the Unix
-- epoch; now they are TIMESTAMPTZ like every other table, and the columns lose
-- their `_ms` suffix. The audit details become JSONB like every other JSON
-- column (they were always written as a JSON object).

ALTER TABLE tokens ALTER COLUMN revoked_at_ms TYPE TIMESTAMPTZ USING to_timestamp(revoked_at_ms / 1000.0);
ALTER TABLE tokens RENAME COLUMN revoked_at_ms TO revoked_at;

-- The default is the old one (0), as a time.
ALTER TABLE memberships ALTER COLUMN added_at_ms DROP DEFAULT;
ALTER TABLE memberships ALTER COLUMN added_at_ms TYPE TIMESTAMPTZ USING to_timestamp(added_at_ms / 1000.0);
ALTER TABLE memberships ALTER COLUMN added_at_ms SET DEFAULT TIMESTAMPTZ 'epoch';
ALTER TABLE memberships RENAME COLUMN added_at_ms TO added_at;

ALTER TABLE web_sessions
    ALTER COLUMN created_at_ms TYPE TIMESTAMPTZ USING to_timestamp(created_at_ms / 1000.0),
    ALTER COLUMN expires_at_ms TYPE TIMESTAMPTZ USING to_timestamp(expires_at_ms / 1000.0);
ALTER TABLE web_sessions RENAME COLUMN created_at_ms TO created_at;
ALTER TABLE web_sessions RENAME COLUMN expires_at_ms TO expires_at;

ALTER TABLE device_codes
    ALTER COLUMN last_poll_ms TYPE TIMESTAMPTZ USING to_timestamp(last_poll_ms / 1000.0),
    ALTER COLUMN created_at_ms TYPE TIMESTAMPTZ USING to_timestamp(created_at_ms / 1000.0),
    ALTER COLUMN expires_at_ms TYPE TIMESTAMPTZ USING to_timestamp(expires_at_ms / 1000.0);
ALTER TABLE device_codes RENAME COLUMN last_poll_ms TO last_poll_at;
ALTER TABLE device_codes RENAME COLUMN created_at_ms TO created_at;
ALTER TABLE device_codes RENAME COLUMN expires_at_ms TO expires_at;

ALTER TABLE refresh_tokens
    ALTER COLUMN created_at_ms TYPE TIMESTAMPTZ USING to_timestamp(created_at_ms / 1000.0),
    ALTER COLUMN expires_at_ms TYPE TIMESTAMPTZ USING to_timestamp(expires_at_ms / 1000.0),
    ALTER COLUMN used_at_ms TYPE TIMESTAMPTZ USING to_timestamp(used_at_ms / 1000.0),
    ALTER COLUMN revoked_at_ms TYPE TIMESTAMPTZ USING to_timestamp(revoked_at_ms / 1000.0);
ALTER TABLE refresh_tokens RENAME COLUMN created_at_ms TO created_at;
ALTER TABLE refresh_tokens RENAME COLUMN expires_at_ms TO expires_at;
ALTER TABLE refresh_tokens RENAME COLUMN used_at_ms TO used_at;
ALTER TABLE refresh_tokens RENAME COLUMN revoked_at_ms TO revoked_at;

ALTER TABLE login_failures ALTER COLUMN at_ms TYPE TIMESTAMPTZ USING to_timestamp(at_ms / 1000.0);
ALTER TABLE login_failures RENAME COLUMN at_ms TO at;

ALTER TABLE audit_events
    ALTER COLUMN at_ms TYPE TIMESTAMPTZ USING to_timestamp(at_ms / 1000.0),
    ALTER COLUMN details TYPE JSONB USING details::jsonb;
ALTER TABLE audit_events RENAME COLUMN at_ms TO at;
