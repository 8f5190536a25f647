package loadgen

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/sqlite"
)

func paidOnce(id string) intentRow {
	return intentRow{ID: id, Status: intentApproved, OrderStatus: orderPaid, Approvals: 1, PaidTransitions: 1}
}

// TestJudgePaymentsPassesOnePerIntent: intents approved once each, ledger
// balanced, orders paid once: no violation.
func TestJudgePaymentsPassesOnePerIntent(t *testing.T) {
	c, v := judgePayments([]intentRow{paidOnce("p1"), paidOnce("p2")}, 2)
	if len(v) != 0 || c.ApprovedOnce != 2 || c.DoubleApplies != 0 || !c.Checked {
		t.Fatalf("check %+v, violations %v", c, v)
	}
}

// TestJudgePaymentsFailsADoubleApply: a second approval posted for one
// intent, or its order marked paid twice, is a double apply even though
// the statuses read approved and paid; a missing apply, an unbalanced
// ledger and a missing intent fail too.
func TestJudgePaymentsFailsADoubleApply(t *testing.T) {
	twoApprovals := paidOnce("p2")
	twoApprovals.Approvals = 2
	paidTwice := paidOnce("p3")
	paidTwice.PaidTransitions = 2
	c, v := judgePayments([]intentRow{paidOnce("p1"), twoApprovals, paidTwice}, 3)
	if c.DoubleApplies != 2 || c.ApprovedOnce != 1 || len(v) != 1 ||
		!strings.Contains(v[0], "2 intents applied more than once") || !strings.Contains(v[0], "p2 (2 approvals") ||
		!strings.Contains(v[0], "p3 (1 approvals, paid 2 times)") {
		t.Fatalf("check %+v, violations %v", c, v)
	}

	pending := paidOnce("p4")
	pending.Status, pending.OrderStatus, pending.Approvals, pending.PaidTransitions = "pending", "pending_payment", 0, 0
	unbalanced := paidOnce("p5")
	unbalanced.Balance = 5000000
	c, v = judgePayments([]intentRow{pending, unbalanced}, 3)
	joined := strings.Join(v, "\n")
	for _, want := range []string{"2 of the run's intents in the database, 3 seeded", "1 intents not approved and paid: p4",
		"the ledger does not balance: 1 intents, sum 5000000 (p5)"} {
		if !strings.Contains(joined, want) {
			t.Errorf("violations lack %q:\n%s", want, joined)
		}
	}
	if c.NotApplied != 1 || c.Unbalanced != 1 || c.LedgerSumMinor != 5000000 {
		t.Errorf("check %+v", c)
	}
}

// TestWebhooksPlan: a fifth of the burst duplicates; the rest are two
// events (approval, stale PENDING) per intent.
func TestWebhooksPlan(t *testing.T) {
	for _, tc := range []struct {
		events          int
		share           float64
		intents, copies int
	}{{5000, 0.2, 2000, 1000}, {200, 0.2, 80, 40}, {7, 0, 4, 0}, {1, 0.5, 1, 0}} {
		if i, d := webhooksPlan(tc.events, tc.share); i != tc.intents || d != tc.copies {
			t.Errorf("webhooksPlan(%d, %v) = %d intents, %d duplicates; want %d, %d", tc.events, tc.share, i, d, tc.intents, tc.copies)
		}
	}
}

// TestPaymentsCheckReadsADoubleApplyFromSQLite: the check's query, run on
// a migrated SQLite store, sees an intent paid once as such and an intent
// with a second approval posted and its order marked paid twice as a
// double apply, although both read approved and paid.
func TestPaymentsCheckReadsADoubleApplyFromSQLite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "spa.db")
	st, err := sqlite.Open(ctx, path, persistence.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 5, 15, 0, 0, 0, time.UTC)
	// pay writes what the webhook's apply writes for one approval of
	// intent: the ledger movement and the order's paid transition.
	pay := func(tx persistence.Tx, in persistence.PaymentIntent, transaction string) error {
		if err := tx.PaymentLedgerPost(ctx, persistence.LedgerMovement{ID: ulid.Make().String(), IntentID: in.ID,
			Key: "approved/" + transaction, Memo: "payment approved", At: at, Lines: []persistence.LedgerLine{
				{Account: persistence.AccountWompi, Debit: true, AmountMinor: in.AmountMinor},
				{Account: persistence.AccountOrders, AmountMinor: in.AmountMinor}}}); err != nil {
			return err
		}
		return tx.AuditAppend(ctx, persistence.AuditEntry{ID: ulid.Make().String(), At: at, ActorID: "system", ActorRole: "system",
			Action: "order.paid", Subject: "order/" + in.SubjectID, Reason: "paid online"})
	}
	err = st.InTx(ctx, func(tx persistence.Tx) error {
		for i, orderID := range []string{"o-once", "o-twice"} {
			o := persistence.Order{ID: orderID, ClientID: "lgtest-c" + orderID, Status: persistence.OrderPendingPayment,
				Lines: []persistence.OrderLine{{ID: orderID + "-l", VariantID: "v", SKU: "V", Name: "Oil", Qty: 1,
					UnitPriceMinor: 5_000_000, TaxRateBps: 1900}},
				Fulfilment: persistence.FulfilmentPickup, CreatedAt: at, ExpiresAt: at.Add(time.Hour)}
			o.ComputeTotals()
			if err := tx.OrderCreate(ctx, o); err != nil {
				return err
			}
			if _, err := tx.OrderTransition(ctx, persistence.OrderTransition{ID: o.ID, From: persistence.OrderPendingPayment,
				To: persistence.OrderPaid, At: at}); err != nil {
				return err
			}
			in, err := tx.PaymentIntentCreate(ctx, persistence.PaymentIntent{ID: fmt.Sprintf("p%d", i), Kind: persistence.PaymentOrder,
				SubjectID: o.ID, ClientID: o.ClientID, AmountMinor: o.TotalMinor, Currency: "COP", CreatedAt: at, ExpiresAt: at.Add(time.Hour)})
			if err != nil {
				return err
			}
			if in, err = tx.PaymentIntentUpdate(ctx, persistence.IntentChange{ID: in.ID, FromVersion: in.Version,
				Status: persistence.IntentApproved, TransactionID: "tx-" + orderID, At: at}); err != nil {
				return err
			}
			if err := pay(tx, in, in.TransactionID); err != nil {
				return err
			}
			if orderID == "o-twice" {
				if err := pay(tx, in, "tx-again"); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := readPaymentIntents(ctx, "", path, "lgtest-")
	if err != nil {
		t.Fatal(err)
	}
	c, v := judgePayments(rows, 2)
	if c.Intents != 2 || c.ApprovedOnce != 1 || c.DoubleApplies != 1 || c.LedgerSumMinor != 0 || len(v) != 1 ||
		!strings.Contains(v[0], "p1 (2 approvals, paid 2 times)") {
		t.Fatalf("check %+v, violations %v (rows %+v)", c, v, rows)
	}
	// Another run's clients are not counted.
	if rows, err := readPaymentIntents(ctx, "", path, "other-"); err != nil || len(rows) != 0 {
		t.Fatalf("another prefix: %v, %v", rows, err)
	}
}
