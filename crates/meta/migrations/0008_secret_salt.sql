-- The salt of the key that seals stored credentials (consumer keys, WebDAV passwords) when the
-- server has a repository passphrase; set on first use (`init_setting`).
INSERT INTO settings (name, value) VALUES ('secret_salt', '');
