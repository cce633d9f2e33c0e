-- Blobs that no row uses any more, written in the transaction that released them and removed
-- once the blob is deleted: a crash (or a stop) between the commit and the deletion leaves
-- them here for the cleaner, never on disk forever.
CREATE TABLE blob_garbage (
    blob_key TEXT PRIMARY KEY,
    portal_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
