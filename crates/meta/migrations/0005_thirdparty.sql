-- Third-party storage: consumer credentials saved per portal (settings/authservice), the
-- portal's connected WebDAV backup folder (files/thirdparty/backup), and named leases that let
-- one instance at a time run a server-wide worker (the cleaner).
CREATE TABLE consumer_settings (
    portal_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    -- JSON object of the consumer's properties, secrets included. Never returned by the API.
    props TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (portal_id, name)
);

CREATE TABLE backup_providers (
    portal_id BIGINT PRIMARY KEY,
    id BIGINT NOT NULL UNIQUE,
    provider_key TEXT NOT NULL,
    title TEXT NOT NULL,
    url TEXT NOT NULL,
    login TEXT NOT NULL,
    password TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

INSERT INTO counters (name, value) VALUES ('provider', 0);

CREATE TABLE worker_leases (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    lease_until BIGINT NOT NULL
);
