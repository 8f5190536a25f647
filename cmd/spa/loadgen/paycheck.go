package loadgen

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// paymentsCheckSQL reads, for each shop-order intent of clients whose id
// matches $1 (a LIKE pattern), what the burst left behind: the intent's
// and its order's status, how many approvals were posted to the ledger
// (movement keys "approved/<transaction>"), the sum of its ledger lines,
// and how many times the order was marked paid (its audit entries). A
// double apply shows as a second approval or a second "order.paid" even
// if the statuses look right.
const paymentsCheckSQL = `SELECT i.id, i.status, o.status,
	(SELECT COUNT(*) FROM payment_movements m WHERE m.intent_id = i.id AND m.movement_key LIKE 'approved/%'),
	(SELECT CAST(COALESCE(SUM(l.amount_minor), 0) AS BIGINT) FROM payment_ledger l WHERE l.intent_id = i.id),
	(SELECT COUNT(*) FROM audit_log a WHERE a.subject = 'order/' || i.subject_id AND a.action = 'order.paid')
FROM payment_intents i JOIN orders o ON o.id = i.subject_id
WHERE i.kind = 'order' AND i.client_id LIKE $1`

// intentRow is one intent as paymentsCheckSQL reads it.
type intentRow struct {
	ID, Status, OrderStatus string
	Approvals, Balance      int64
	PaidTransitions         int64
}

// readPaymentIntents runs paymentsCheckSQL over the intents of clients
// whose id starts with prefix, on PostgreSQL (databaseURL) or SQLite
// (sqlitePath), as CountOverlaps does.
func readPaymentIntents(ctx context.Context, databaseURL, sqlitePath, prefix string) ([]intentRow, error) {
	pattern := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(prefix) + "%"
	scan := func(sc interface{ Scan(...any) error }) (intentRow, error) {
		var r intentRow
		err := sc.Scan(&r.ID, &r.Status, &r.OrderStatus, &r.Approvals, &r.Balance, &r.PaidTransitions)
		return r, err
	}
	var out []intentRow
	if databaseURL != "" {
		conn, err := pgx.Connect(ctx, databaseURL)
		if err != nil {
			return nil, fmt.Errorf("payments check: %w", err)
		}
		defer conn.Close(context.WithoutCancel(ctx))
		rows, _ := conn.Query(ctx, paymentsCheckSQL, pattern)
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (intentRow, error) { return scan(r) })
		if err != nil {
			return nil, fmt.Errorf("payments check: %w", err)
		}
		return out, nil
	}
	db, err := sql.Open("sqlite", "file:"+sqlitePath+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return nil, fmt.Errorf("payments check: %w", err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, strings.Replace(paymentsCheckSQL, "$1", `? ESCAPE '\'`, 1), pattern)
	if err != nil {
		return nil, fmt.Errorf("payments check: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("payments check: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("payments check: %w", err)
	}
	return out, nil
}

// Statuses the check expects of an intent paid once and its order.
const (
	intentApproved = "approved"
	orderPaid      = "paid"
)

// judgePayments counts what rows say of the run's intents (want were
// seeded) and returns the violations: every intent approved exactly once,
// its ledger balanced, its order paid by exactly one transition.
func judgePayments(rows []intentRow, want int) (PaymentsCheck, []string) {
	c := PaymentsCheck{Checked: true, Intents: len(rows)}
	var doubled, missing, unbalanced []string
	for _, r := range rows {
		c.LedgerSumMinor += r.Balance
		if r.Balance != 0 {
			c.Unbalanced++
			unbalanced = appendSome(unbalanced, r.ID)
		}
		switch {
		case r.Approvals > 1 || r.PaidTransitions > 1:
			c.DoubleApplies++
			doubled = appendSome(doubled, fmt.Sprintf("%s (%d approvals, paid %d times)", r.ID, r.Approvals, r.PaidTransitions))
		case r.Approvals == 0 || r.PaidTransitions == 0 || r.Status != intentApproved || r.OrderStatus != orderPaid:
			c.NotApplied++
			missing = appendSome(missing, fmt.Sprintf("%s (intent %s, order %s, %d approvals)", r.ID, r.Status, r.OrderStatus, r.Approvals))
		default:
			c.ApprovedOnce++
		}
	}
	var v []string
	if c.Intents != want {
		v = append(v, fmt.Sprintf("payments: %d of the run's intents in the database, %d seeded", c.Intents, want))
	}
	if c.DoubleApplies > 0 {
		v = append(v, fmt.Sprintf("payments: %d intents applied more than once: %s", c.DoubleApplies, strings.Join(doubled, ", ")))
	}
	if c.NotApplied > 0 {
		v = append(v, fmt.Sprintf("payments: %d intents not approved and paid: %s", c.NotApplied, strings.Join(missing, ", ")))
	}
	if c.Unbalanced > 0 || c.LedgerSumMinor != 0 {
		v = append(v, fmt.Sprintf("payments: the ledger does not balance: %d intents, sum %d (%s)", c.Unbalanced, c.LedgerSumMinor,
			strings.Join(unbalanced, ", ")))
	}
	return c, v
}

// appendSome keeps the first few examples of a kind of violation.
func appendSome(list []string, s string) []string {
	if len(list) < 5 {
		list = append(list, s)
	}
	return list
}
