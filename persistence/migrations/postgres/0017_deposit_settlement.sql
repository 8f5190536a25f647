-- Deposits of appointments that ended without the service (cancelled or
-- no-show) are refunded or kept as a fee by the payments follow-up;
-- reconciliation finds the ones not done yet from the appointments that
-- changed recently (PaymentDepositsToSettle), through this index.

CREATE INDEX IF NOT EXISTS appointments_status_updated ON appointments (status, updated_at);
