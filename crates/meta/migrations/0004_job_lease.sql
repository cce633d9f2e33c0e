-- Jobs are owned by the instance that runs them and kept alive by a lease it renews. A job whose
-- lease ran out belongs to an instance that died: another instance fails it and cleans up.
ALTER TABLE backup_jobs ADD COLUMN owner TEXT;
ALTER TABLE backup_jobs ADD COLUMN lease_until BIGINT;
