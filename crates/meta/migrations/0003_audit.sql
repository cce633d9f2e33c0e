-- The audit log: what was done to a portal's backups, by whom, when. Portable SQL, as 0001.
CREATE TABLE audit_events (
    id        TEXT PRIMARY KEY,
    portal_id BIGINT NOT NULL,
    at        BIGINT NOT NULL,
    user_id   TEXT,
    action    TEXT NOT NULL,
    detail    TEXT NOT NULL
);
CREATE INDEX audit_events_portal ON audit_events (portal_id, at);
