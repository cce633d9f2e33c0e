-- A file's bytes are written before its row. Their key is recorded here first, as garbage that
-- may not be collected before `not_before`, and the row's transaction removes the record: a stop
-- between the bytes and the row leaves the bytes to the cleaner, never on disk forever. NULL:
-- collectable now (released bytes).
ALTER TABLE blob_garbage ADD COLUMN not_before BIGINT;
