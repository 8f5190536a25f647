-- Notification templates (docs/notifications.md, Templates): versions of
-- a kind's text in a language on a channel written by an admin (version 1
-- is the text embedded in the binary and is not stored), and which version
-- of each is sent. The variables of every version were checked when it
-- was saved.
CREATE TABLE IF NOT EXISTS notification_templates (
	kind       TEXT    NOT NULL,
	lang       TEXT    NOT NULL,
	channel    TEXT    NOT NULL,
	version    INTEGER    NOT NULL,
	subject    TEXT    NOT NULL DEFAULT '',
	body       TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	created_by TEXT    NOT NULL DEFAULT '',
	PRIMARY KEY (kind, lang, channel, version)
);
CREATE TABLE IF NOT EXISTS notification_template_active (
	kind         TEXT    NOT NULL,
	lang         TEXT    NOT NULL,
	channel      TEXT    NOT NULL,
	version      INTEGER    NOT NULL,
	activated_at INTEGER NOT NULL,
	activated_by TEXT    NOT NULL DEFAULT '',
	PRIMARY KEY (kind, lang, channel)
);
