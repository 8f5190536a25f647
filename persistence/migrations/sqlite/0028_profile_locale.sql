-- A client's own language (es-CO, en) and time zone (IANA) for the
-- messages sent to them (docs/notifications.md, The client's language and
-- time zone): sealed like every other profile field (the key id inside
-- the ciphertext); NULL is the studio's. Anonymisation scrubs them.
ALTER TABLE client_profiles ADD COLUMN language_cipher BLOB;
ALTER TABLE client_profiles ADD COLUMN time_zone_cipher BLOB;
