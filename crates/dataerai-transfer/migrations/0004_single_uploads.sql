-- A start row of a lone small file sent as one `POST /uploads/single` (the
-- asset, session, bytes and version in one request): the local path, and the
-- start id is the request's key. A row left behind (the daemon died between
-- the request and journaling the transfer) is settled by asking the server
-- for the key: the upload is journaled completed if it was made, and the row
-- dropped either way.
ALTER TABLE upload_starts ADD COLUMN single_path TEXT;
