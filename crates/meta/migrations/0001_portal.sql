-- The portal slice. Portable SQL: the same file runs on SQLite and PostgreSQL.
-- Every integer is BIGINT and every boolean a BIGINT 0/1, so that both engines decode alike.
-- Times are Unix milliseconds. GUIDs are lower-case hyphenated TEXT.
-- Every table but `counters` carries `portal_id`, and every query filters on it.

CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('portal', 0);
INSERT INTO counters (name, value) VALUES ('folder', 0);
INSERT INTO counters (name, value) VALUES ('file', 0);

CREATE TABLE portals (
    id          BIGINT PRIMARY KEY,
    alias       TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    owner_id    TEXT NOT NULL,
    language    TEXT NOT NULL,
    time_zone   TEXT NOT NULL,
    status      BIGINT NOT NULL,
    is_default  BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    modified_at BIGINT NOT NULL
);

CREATE TABLE users (
    portal_id         BIGINT NOT NULL,
    id                TEXT NOT NULL,
    email             TEXT NOT NULL,
    email_key         TEXT NOT NULL,
    user_name         TEXT NOT NULL,
    first_name        TEXT NOT NULL,
    last_name         TEXT NOT NULL,
    kind              BIGINT NOT NULL,
    is_owner          BIGINT NOT NULL,
    status            BIGINT NOT NULL,
    activation_status BIGINT NOT NULL,
    password_hash     TEXT NOT NULL,
    created_by        TEXT,
    created_at        BIGINT NOT NULL,
    PRIMARY KEY (portal_id, id),
    UNIQUE (portal_id, email_key)
);

CREATE TABLE sessions (
    digest     TEXT PRIMARY KEY,
    id         TEXT NOT NULL,
    portal_id  BIGINT NOT NULL,
    user_id    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT
);
CREATE INDEX sessions_portal_user ON sessions (portal_id, user_id);

CREATE TABLE api_keys (
    digest      TEXT PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    portal_id   BIGINT NOT NULL,
    user_id     TEXT NOT NULL,
    name        TEXT NOT NULL,
    postfix     TEXT NOT NULL,
    permissions TEXT NOT NULL,
    is_active   BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT,
    last_used   BIGINT
);
CREATE INDEX api_keys_portal ON api_keys (portal_id, user_id);

CREATE TABLE folders (
    id          BIGINT PRIMARY KEY,
    portal_id   BIGINT NOT NULL,
    parent_id   BIGINT,
    kind        BIGINT NOT NULL,
    title       TEXT NOT NULL,
    owner_id    TEXT,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    modified_by TEXT NOT NULL,
    modified_at BIGINT NOT NULL
);
CREATE INDEX folders_parent ON folders (portal_id, parent_id);
CREATE INDEX folders_kind ON folders (portal_id, kind, owner_id);

CREATE TABLE files (
    id          BIGINT PRIMARY KEY,
    portal_id   BIGINT NOT NULL,
    folder_id   BIGINT NOT NULL,
    title       TEXT NOT NULL,
    version     BIGINT NOT NULL,
    size        BIGINT NOT NULL,
    blob_key    TEXT NOT NULL,
    blake3      TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    modified_by TEXT NOT NULL,
    modified_at BIGINT NOT NULL
);
CREATE INDEX files_folder ON files (portal_id, folder_id);
