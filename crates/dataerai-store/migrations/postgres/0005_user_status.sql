-- Account status for server administrators and project invitations.
--
-- `disabled_at`: set by `dataerai-server admin disable-user`; a disabled user
-- cannot sign in and their tokens and web sessions stop working (the lookups
-- skip them). `invited`: the account was made when a project admin added an
-- email nobody had an account for; it has no password and becomes an ordinary
-- account when a server administrator creates the user with that email.
ALTER TABLE users ADD COLUMN disabled_at TIMESTAMPTZ;
ALTER TABLE users ADD COLUMN invited BOOLEAN NOT NULL DEFAULT FALSE;
