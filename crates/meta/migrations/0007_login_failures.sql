-- Failed sign-ins, shared by every instance on the database, so the sign-in throttle counts the
-- attempts at a (login, client address) wherever they were made. The login is kept as a digest:
-- people type their password into the login field, and it must not be stored.
CREATE TABLE login_failures (
    login_digest TEXT NOT NULL,
    address TEXT NOT NULL,
    at_ms BIGINT NOT NULL
);
CREATE INDEX login_failures_by_pair ON login_failures (login_digest, address, at_ms);
CREATE INDEX login_failures_by_time ON login_failures (at_ms);
