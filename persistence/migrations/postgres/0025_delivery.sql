-- Delivery statuses (docs/notifications.md, Delivery statuses): a
-- provider's status names its message by the id it returned when sent,
-- so notifications are found by it.
CREATE INDEX IF NOT EXISTS notifications_provider_message ON notifications (provider_message_id);

-- The WhatsApp customer-service window: when each phone last wrote to us
-- on WhatsApp. The phone is its blind index (the key users.phone_key
-- holds), never the number.
CREATE TABLE IF NOT EXISTS messaging_windows (
	phone_key        TEXT    PRIMARY KEY,
	last_inbound_at  TIMESTAMPTZ NOT NULL
);
