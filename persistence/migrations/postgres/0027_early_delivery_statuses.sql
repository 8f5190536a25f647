-- Delivery statuses that overtook their send (docs/notifications.md,
-- Delivery statuses): a provider's status webhook can arrive before the
-- notification's row records the id the provider answered with. Such a
-- status is kept here, by that id, and applied when the id is recorded.
-- Rows of ids that never become a notification's (bot answers, login
-- codes) are dropped an hour after they arrived. No personal data: the
-- provider's message id, the status and its error code.
CREATE TABLE IF NOT EXISTS early_delivery_statuses (
	provider_message_id TEXT    NOT NULL,
	status              TEXT    NOT NULL,
	provider            TEXT    NOT NULL,
	error_code          TEXT    NOT NULL DEFAULT '',
	received_at         TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (provider_message_id, status)
);
CREATE INDEX IF NOT EXISTS early_delivery_statuses_received ON early_delivery_statuses (received_at);
