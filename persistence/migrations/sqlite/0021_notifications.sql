-- Notifications (docs/notifications.md): one row per message to a client
-- on one channel. The id is derived from the message's cause
-- ("appointment:<id>:confirmed:v<version>:whatsapp"), so a redelivered
-- event finds its row and never sends twice. The rendered body is sealed
-- under the client's data key (anonymisation shreds it).
CREATE TABLE IF NOT EXISTS notifications (
	id                  TEXT    PRIMARY KEY,
	user_id             TEXT    NOT NULL,
	kind                TEXT    NOT NULL,
	category            TEXT    NOT NULL,
	channel             TEXT    NOT NULL,
	status              TEXT    NOT NULL,
	attempts            INTEGER NOT NULL DEFAULT 0,
	last_error          TEXT    NOT NULL DEFAULT '',
	provider_message_id TEXT    NOT NULL DEFAULT '',
	body                TEXT    NOT NULL DEFAULT '',
	created_at          INTEGER NOT NULL,
	updated_at          INTEGER NOT NULL,
	sent_at             INTEGER
);
CREATE INDEX IF NOT EXISTS notifications_recent ON notifications (created_at, id);
CREATE INDEX IF NOT EXISTS notifications_user ON notifications (user_id);
