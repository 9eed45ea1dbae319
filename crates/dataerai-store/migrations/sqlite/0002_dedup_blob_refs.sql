-- Issue 3: content-addressed deduplication.
--
-- A content file's bytes normally live under its own content version
-- (blob key `content_id/file_index/chunk_index`). A deduplicated file instead
-- points at the file whose chunks hold its bytes: `blob_content_id`,
-- `blob_file_index` and the chunk size those chunks were cut with
-- (`blob_chunk_size`, copied because the referenced content row may be deleted
-- while its bytes live on for this reference). NULL = the file's own chunks.
-- The pointer always names the physical location, never another pointer, so a
-- read is one hop.
--
-- Blobs of a content id may be deleted only when no live (non-aborted) content
-- file refers to them any more, either as its own chunks or through a pointer.

ALTER TABLE content_files ADD COLUMN blob_content_id TEXT;
ALTER TABLE content_files ADD COLUMN blob_file_index INTEGER;
ALTER TABLE content_files ADD COLUMN blob_chunk_size INTEGER;

-- Dedup lookup: same size and checksum among an owner's complete files.
CREATE INDEX content_files_checksum ON content_files(checksum, size);
-- Reference check before deleting a content id's blobs.
CREATE INDEX content_files_blob ON content_files(blob_content_id);
-- Open sessions (the active-uploads gauge).
CREATE INDEX uploads_status ON uploads(status);
