-- Resource claims: a short reservation of one unit of a shared resource
-- (room, sauna) for an appointment being booked, written by the resource's
-- actor under its calendar epoch before the staff member's actor holds the
-- slot. start_at and end_at are the padded interval (buffers included). An
-- expired claim blocks nothing. Accepted by PostgreSQL and CockroachDB.

CREATE TABLE IF NOT EXISTS resource_claims (
	resource_id    TEXT        NOT NULL,
	appointment_id TEXT        NOT NULL,
	start_at       TIMESTAMPTZ NOT NULL,
	end_at         TIMESTAMPTZ NOT NULL,
	expires_at     TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (resource_id, appointment_id)
);
CREATE INDEX IF NOT EXISTS resource_claims_resource_start ON resource_claims (resource_id, start_at);
