-- The sign-in tables kept their times as integer milliseconds since the Unix
-- epoch; now they are RFC 3339 text in one fixed width, like every other
-- table: `2026-12-06T12:41:03.123000Z` (six fractional digits and `Z`, so text
-- order is time order). Columns lose their `_ms` suffix. The audit details
-- stay JSON text.
--
-- The conversion of a millisecond value `x` (never negative: every stored
-- time is after 1970) is
--   strftime('%Y-%m-%dT%H:%M:%S', x / 1000, 'unixepoch') || printf('.%03d000Z', x % 1000)
-- and NULL stays NULL. Columns of shared tables are added, filled and the old
-- ones dropped; the sign-in tables are rebuilt (their NOT NULL columns need no
-- placeholder default that way).

ALTER TABLE tokens ADD COLUMN revoked_at TEXT;
UPDATE tokens SET revoked_at =
    strftime('%Y-%m-%dT%H:%M:%S', revoked_at_ms / 1000, 'unixepoch') || printf('.%03d000Z', revoked_at_ms % 1000);
ALTER TABLE tokens DROP COLUMN revoked_at_ms;

-- The default is the old one (0), as a time.
ALTER TABLE memberships ADD COLUMN added_at TEXT NOT NULL DEFAULT '1970-01-01T00:00:00.000000Z';
UPDATE memberships SET added_at =
    strftime('%Y-%m-%dT%H:%M:%S', added_at_ms / 1000, 'unixepoch') || printf('.%03d000Z', added_at_ms % 1000);
ALTER TABLE memberships DROP COLUMN added_at_ms;

CREATE TABLE web_sessions_new (
    id_hash     TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);
INSERT INTO web_sessions_new (id_hash, user_id, csrf_token, created_at, expires_at)
SELECT id_hash, user_id, csrf_token,
    strftime('%Y-%m-%dT%H:%M:%S', created_at_ms / 1000, 'unixepoch') || printf('.%03d000Z', created_at_ms % 1000),
    strftime('%Y-%m-%dT%H:%M:%S', expires_at_ms / 1000, 'unixepoch') || printf('.%03d000Z', expires_at_ms % 1000)
FROM web_sessions;
DROP TABLE web_sessions;
ALTER TABLE web_sessions_new RENAME TO web_sessions;

CREATE TABLE device_codes_new (
    device_hash   TEXT PRIMARY KEY,
    user_code     TEXT NOT NULL UNIQUE,
    client_id     TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    status        TEXT NOT NULL,
    user_id       TEXT REFERENCES users(id) ON DELETE CASCADE,
    interval_s    INTEGER NOT NULL,
    last_poll_at  TEXT,
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL
);
INSERT INTO device_codes_new (device_hash, user_code, client_id, scopes, status, user_id,
    interval_s, last_poll_at, created_at, expires_at)
SELECT device_hash, user_code, client_id, scopes, status, user_id, interval_s,
    strftime('%Y-%m-%dT%H:%M:%S', last_poll_ms / 1000, 'unixepoch') || printf('.%03d000Z', last_poll_ms % 1000),
    strftime('%Y-%m-%dT%H:%M:%S', created_at_ms / 1000, 'unixepoch') || printf('.%03d000Z', created_at_ms % 1000),
    strftime('%Y-%m-%dT%H:%M:%S', expires_at_ms / 1000, 'unixepoch') || printf('.%03d000Z', expires_at_ms % 1000)
FROM device_codes;
DROP TABLE device_codes;
ALTER TABLE device_codes_new RENAME TO device_codes;

CREATE TABLE refresh_tokens_new (
    token_hash  TEXT PRIMARY KEY,
    family_id   TEXT NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    scopes      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT,
    revoked_at  TEXT
);
INSERT INTO refresh_tokens_new (token_hash, family_id, user_id, scopes, created_at, expires_at,
    used_at, revoked_at)
SELECT token_hash, family_id, user_id, scopes,
    strftime('%Y-%m-%dT%H:%M:%S', created_at_ms / 1000, 'unixepoch') || printf('.%03d000Z', created_at_ms % 1000),
    strftime('%Y-%m-%dT%H:%M:%S', expires_at_ms / 1000, 'unixepoch') || printf('.%03d000Z', expires_at_ms % 1000),
    strftime('%Y-%m-%dT%H:%M:%S', used_at_ms / 1000, 'unixepoch') || printf('.%03d000Z', used_at_ms % 1000),
    strftime('%Y-%m-%dT%H:%M:%S', revoked_at_ms / 1000, 'unixepoch') || printf('.%03d000Z', revoked_at_ms % 1000)
FROM refresh_tokens;
DROP TABLE refresh_tokens;
ALTER TABLE refresh_tokens_new RENAME TO refresh_tokens;
CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);

CREATE TABLE login_failures_new (
    email        TEXT NOT NULL,
    client_addr  TEXT NOT NULL,
    at           TEXT NOT NULL
);
INSERT INTO login_failures_new (email, client_addr, at)
SELECT email, client_addr,
    strftime('%Y-%m-%dT%H:%M:%S', at_ms / 1000, 'unixepoch') || printf('.%03d000Z', at_ms % 1000)
FROM login_failures;
DROP TABLE login_failures;
ALTER TABLE login_failures_new RENAME TO login_failures;
CREATE INDEX login_failures_email ON login_failures(email, at);
CREATE INDEX login_failures_addr ON login_failures(client_addr, at);

-- `seq` values are copied, so the order of the log is kept.
CREATE TABLE audit_events_new (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    at             TEXT NOT NULL,
    actor_user_id  TEXT,
    action         TEXT NOT NULL,
    target_type    TEXT,
    target_id      TEXT,
    details        TEXT NOT NULL,
    client_addr    TEXT
);
INSERT INTO audit_events_new (seq, id, at, actor_user_id, action, target_type, target_id,
    details, client_addr)
SELECT seq, id,
    strftime('%Y-%m-%dT%H:%M:%S', at_ms / 1000, 'unixepoch') || printf('.%03d000Z', at_ms % 1000),
    actor_user_id, action, target_type, target_id, details, client_addr
FROM audit_events;
DROP TABLE audit_events;
ALTER TABLE audit_events_new RENAME TO audit_events;
