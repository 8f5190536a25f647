-- Quota counters (actors/quota): the leases of one counted key (an IP
-- address, a client, a global shard of a limit), written by the key's
-- single actor under a version check before every reply, so login-code
-- limits and hoarding caps hold across the cluster and across restarts.
CREATE TABLE IF NOT EXISTS quota_counters (
	key        TEXT    PRIMARY KEY,
	state      BLOB    NOT NULL,
	expires_at INTEGER NOT NULL,
	version    INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);

CREATE INDEX IF NOT EXISTS quota_counters_expires_at ON quota_counters (expires_at);
