-- WhatsApp bot conversations (docs/bot.md): one row per phone, written by
-- the phone's session actor. memory is sealed by the actor; the other
-- columns hold no personal data (the phone's blind index, the client's
-- id). Anonymisation deletes the client's rows.
CREATE TABLE IF NOT EXISTS bot_conversations (
	phone_key     TEXT    PRIMARY KEY,
	client_id     TEXT    NOT NULL DEFAULT '',
	memory        BYTEA   NOT NULL,
	owner         TEXT    NOT NULL DEFAULT 'bot',
	waiting_since TIMESTAMPTZ,
	staff_id      TEXT    NOT NULL DEFAULT '',
	version       INT8    NOT NULL,
	updated_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS bot_conversations_owner ON bot_conversations (owner, waiting_since);
CREATE INDEX IF NOT EXISTS bot_conversations_client ON bot_conversations (client_id);
