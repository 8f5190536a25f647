-- Notification preferences (docs/notifications.md, Preferences): per
-- client, the category:channel pairs turned off ("marketing:whatsapp",
-- comma-separated, sorted) and the client's channel order ("email,sms";
-- empty: each kind's own). No row: the defaults (everything on).
-- Anonymisation deletes the row.
CREATE TABLE IF NOT EXISTS notification_preferences (
	user_id       TEXT    PRIMARY KEY,
	opt_outs      TEXT    NOT NULL DEFAULT '',
	channel_order TEXT    NOT NULL DEFAULT '',
	version       INT8    NOT NULL,
	updated_at    TIMESTAMPTZ NOT NULL
);
