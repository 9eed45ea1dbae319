-- The caller's key of each upload made by `POST /uploads/single` (one
-- request for the asset, the session, the bytes and the published version):
-- a retried request, or a daemon that restarts after sending it, finds the
-- upload by this key instead of making a second one. Goes with the session.
CREATE TABLE single_upload_keys (
    user_id    TEXT NOT NULL REFERENCES users(id),
    key        TEXT NOT NULL,
    upload_id  TEXT NOT NULL REFERENCES uploads(id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX single_upload_keys_upload ON single_upload_keys(upload_id);
