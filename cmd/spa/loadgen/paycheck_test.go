package loadgen

import (
	"strings"
	"testing"
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
