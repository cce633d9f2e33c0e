-- Backup and restore jobs, the backup history, schedules, and server settings.
-- Portable SQL, as 0001.

-- One row per job. A portal has at most one unfinished job of each kind (the partial unique
-- index), which is what makes a second `startbackup` return the running job even when two
-- instances race.
CREATE TABLE backup_jobs (
    id               TEXT PRIMARY KEY,
    portal_id        BIGINT NOT NULL,
    kind             BIGINT NOT NULL,
    status           BIGINT NOT NULL,
    progress         BIGINT NOT NULL,
    phase            TEXT NOT NULL,
    error            TEXT NOT NULL,
    warning          TEXT,
    link             TEXT,
    is_completed     BIGINT NOT NULL,
    storage_type     BIGINT NOT NULL,
    storage_params   TEXT NOT NULL,
    is_scheduled     BIGINT NOT NULL,
    cancel_requested BIGINT NOT NULL,
    created_by       TEXT,
    partial          TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE UNIQUE INDEX backup_jobs_one_running ON backup_jobs (portal_id, kind) WHERE is_completed = 0;
CREATE INDEX backup_jobs_portal ON backup_jobs (portal_id, kind, created_at);

-- The history. Rows are soft-deleted (`removed`), so counts include deleted backups.
CREATE TABLE backups (
    id             TEXT PRIMARY KEY,
    portal_id      BIGINT NOT NULL,
    is_scheduled   BIGINT NOT NULL,
    file_name      TEXT NOT NULL,
    hash           TEXT NOT NULL,
    size           BIGINT NOT NULL,
    storage_type   BIGINT NOT NULL,
    storage_path   TEXT NOT NULL,
    storage_params TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT,
    removed        BIGINT NOT NULL,
    paid           BIGINT NOT NULL
);
CREATE INDEX backups_portal ON backups (portal_id, removed, created_at);
CREATE INDEX backups_expires ON backups (expires_at);

CREATE TABLE backup_schedules (
    portal_id      BIGINT PRIMARY KEY,
    cron           TEXT NOT NULL,
    backups_stored BIGINT NOT NULL,
    storage_type   BIGINT NOT NULL,
    storage_params TEXT NOT NULL,
    last_backup_at BIGINT,
    created_at     BIGINT NOT NULL
);

-- Server-wide settings, e.g. the key that signs download links. Values are set once.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO settings (name, value) VALUES ('link_signing_key', '');
