-- A download finds the digests recorded for a content version's chunks (the
-- S3 blob store names each chunk's object by its digest) through the upload
-- session that stored them: sessions by content version.
CREATE INDEX uploads_content ON uploads(content_id);
