-- Booking: catalogue, calendars and appointments. Accepted by both
-- PostgreSQL and CockroachDB: no sequences, advisory locks, LISTEN/NOTIFY or
-- exclusion constraints; overlaps are prevented by the calendar actors,
-- fenced by calendars.epoch. Durations are INT8 whole seconds, money INT8
-- minor units, lists (skills, clock ranges) JSON in TEXT.

CREATE TABLE IF NOT EXISTS services (
	id                        TEXT        NOT NULL PRIMARY KEY,
	name                      TEXT        NOT NULL,
	category                  TEXT        NOT NULL,
	duration_seconds          INT8        NOT NULL,
	price_minor               INT8        NOT NULL,
	buffer_before_seconds     INT8        NOT NULL,
	buffer_after_seconds      INT8        NOT NULL,
	required_skills           TEXT        NOT NULL, -- JSON array, sorted
	resource_id               TEXT        NOT NULL, -- '' when none
	deposit_policy            TEXT        NOT NULL,
	deposit_value             INT8        NOT NULL,
	cancel_cutoff_seconds     INT8        NOT NULL,
	reschedule_cutoff_seconds INT8        NOT NULL,
	active                    BOOL        NOT NULL,
	version                   INT8        NOT NULL,
	updated_at                TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS staff (
	id         TEXT        NOT NULL PRIMARY KEY,
	name       TEXT        NOT NULL,
	skills     TEXT        NOT NULL, -- JSON array, sorted
	time_zone  TEXT        NOT NULL,
	weekly     TEXT        NOT NULL, -- JSON: 7 arrays (Sunday first) of [start, end] minutes
	active     BOOL        NOT NULL,
	version    INT8        NOT NULL,
	updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS staff_date_overrides (
	staff_id TEXT NOT NULL REFERENCES staff (id),
	date     TEXT NOT NULL, -- YYYY-MM-DD in the staff member's zone
	closed   BOOL NOT NULL,
	ranges   TEXT NOT NULL, -- JSON array of [start, end] minutes
	PRIMARY KEY (staff_id, date)
);

CREATE TABLE IF NOT EXISTS time_off (
	id       TEXT        NOT NULL PRIMARY KEY,
	staff_id TEXT        NOT NULL REFERENCES staff (id),
	start_at TIMESTAMPTZ NOT NULL,
	end_at   TIMESTAMPTZ NOT NULL,
	reason   TEXT        NOT NULL
);
CREATE INDEX IF NOT EXISTS time_off_staff_start ON time_off (staff_id, start_at);

CREATE TABLE IF NOT EXISTS resources (
	id         TEXT        NOT NULL PRIMARY KEY,
	name       TEXT        NOT NULL,
	capacity   INT8        NOT NULL,
	active     BOOL        NOT NULL,
	version    INT8        NOT NULL,
	updated_at TIMESTAMPTZ NOT NULL
);

-- One row per calendar actor ("staff/<id>", "resource/<id>"); epoch fences
-- writes from stale activations.
CREATE TABLE IF NOT EXISTS calendars (
	id    TEXT NOT NULL PRIMARY KEY,
	epoch INT8 NOT NULL
);

-- No foreign keys to the catalogue: appointments are history and must
-- outlive changes to it.
CREATE TABLE IF NOT EXISTS appointments (
	id                    TEXT        NOT NULL PRIMARY KEY,
	staff_id              TEXT        NOT NULL,
	resource_id           TEXT        NOT NULL, -- '' when none
	service_id            TEXT        NOT NULL,
	client_id             TEXT        NOT NULL,
	start_at              TIMESTAMPTZ NOT NULL,
	end_at                TIMESTAMPTZ NOT NULL, -- service time; buffers are not included
	buffer_before_seconds INT8        NOT NULL,
	buffer_after_seconds  INT8        NOT NULL,
	status                TEXT        NOT NULL,
	hold_expires_at       TIMESTAMPTZ,
	price_minor           INT8        NOT NULL,
	deposit_minor         INT8        NOT NULL,
	version               INT8        NOT NULL,
	created_at            TIMESTAMPTZ NOT NULL,
	updated_at            TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS appointments_staff_start ON appointments (staff_id, start_at);
CREATE INDEX IF NOT EXISTS appointments_resource_start ON appointments (resource_id, start_at);
CREATE INDEX IF NOT EXISTS appointments_client_start ON appointments (client_id, start_at);

CREATE TABLE IF NOT EXISTS appointment_transitions (
	id             TEXT        NOT NULL PRIMARY KEY,
	appointment_id TEXT        NOT NULL REFERENCES appointments (id),
	from_status    TEXT        NOT NULL, -- '' for creation
	to_status      TEXT        NOT NULL,
	at             TIMESTAMPTZ NOT NULL,
	actor_id       TEXT        NOT NULL,
	reason         TEXT        NOT NULL
);
CREATE INDEX IF NOT EXISTS appointment_transitions_appointment_id ON appointment_transitions (appointment_id, id);
