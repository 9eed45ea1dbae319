-- Issue 4: passwords, token kinds and revocation, web sessions, device codes,
-- refresh-token families, sign-in failures (rate limiting across replicas),
-- membership dates and the audit log.
--
-- Times of the new columns are integer milliseconds since the Unix epoch, in
-- both backends, so the one SQL text in `meta/auth.rs` serves both.

ALTER TABLE users ADD COLUMN password_hash TEXT;
ALTER TABLE users ADD COLUMN is_admin BOOLEAN NOT NULL DEFAULT FALSE;

-- `pat` (personal access token) or `access` (device flow; `family_id` names
-- the refresh-token family that issued it, so revoking the family revokes it).
ALTER TABLE tokens ADD COLUMN kind TEXT NOT NULL DEFAULT 'pat';
ALTER TABLE tokens ADD COLUMN family_id TEXT;
ALTER TABLE tokens ADD COLUMN revoked_at_ms BIGINT;
CREATE INDEX tokens_user ON tokens(user_id, kind);
CREATE INDEX tokens_family ON tokens(family_id);

ALTER TABLE memberships ADD COLUMN added_at_ms BIGINT NOT NULL DEFAULT 0;

-- Browser sessions: the cookie holds a random id, this table its BLAKE3 hash.
CREATE TABLE web_sessions (
    id_hash       TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token    TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);

-- RFC 8628 device authorizations. `status`: pending, approved, denied, consumed.
CREATE TABLE device_codes (
    device_hash     TEXT PRIMARY KEY,
    user_code       TEXT NOT NULL UNIQUE,
    client_id       TEXT NOT NULL,
    scopes          TEXT NOT NULL,
    status          TEXT NOT NULL,
    user_id         TEXT REFERENCES users(id) ON DELETE CASCADE,
    interval_s      BIGINT NOT NULL,
    last_poll_ms    BIGINT,
    created_at_ms   BIGINT NOT NULL,
    expires_at_ms   BIGINT NOT NULL
);

-- Rotating refresh tokens. One row per token; a rotation marks the old row
-- `used_at_ms`. Presenting a used token revokes the whole family.
CREATE TABLE refresh_tokens (
    token_hash     TEXT PRIMARY KEY,
    family_id      TEXT NOT NULL,
    user_id        TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    scopes         TEXT NOT NULL,
    created_at_ms  BIGINT NOT NULL,
    expires_at_ms  BIGINT NOT NULL,
    used_at_ms     BIGINT,
    revoked_at_ms  BIGINT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);

-- Failed sign-ins, counted per email and per client address in a window.
CREATE TABLE login_failures (
    email        TEXT NOT NULL,
    client_addr  TEXT NOT NULL,
    at_ms        BIGINT NOT NULL
);
CREATE INDEX login_failures_email ON login_failures(email, at_ms);
CREATE INDEX login_failures_addr ON login_failures(client_addr, at_ms);

CREATE TABLE audit_events (
    seq            BIGSERIAL PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,
    at_ms          BIGINT NOT NULL,
    actor_user_id  TEXT,
    action         TEXT NOT NULL,
    target_type    TEXT,
    target_id      TEXT,
    details        TEXT NOT NULL,
    client_addr    TEXT
);
