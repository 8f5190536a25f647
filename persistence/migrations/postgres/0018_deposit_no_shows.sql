-- A service's deposit may be asked only of clients with at least
-- deposit_no_shows no-shows in the last year (0: of everyone).
ALTER TABLE services ADD COLUMN IF NOT EXISTS deposit_no_shows INT8 NOT NULL DEFAULT 0;
