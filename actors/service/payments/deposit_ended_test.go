package payments

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/providers/wompi/wompifake"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/booking"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/actors/service/servicetest"
	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
)

var desk = servicetest.As(auth.RoleReceptionist, "desk")

// paidBooking holds the fixture's slot for maria and has her deposit
// approved at the fake: the appointment is confirmed and the deposit
// attached.
func (f *depositFixture) paidBooking() (persistence.Appointment, persistence.PaymentIntent) {
	f.t.Helper()
	ap := f.hold(maria)
	co := f.mustPayDeposit(maria, ap.ID)
	f.checkout(co, wompifake.Approve)
	if got := f.appointment(ap.ID); got.Status != persistence.StatusConfirmed {
		f.t.Fatalf("appointment %s after its deposit was approved", got.Status)
	}
	if got := f.balance(persistence.AccountDeposits); got != -depositMinor {
		f.t.Fatalf("deposits %d after the approval", got)
	}
	return ap, f.intent(co.Intent.ID)
}

// cancelAs cancels appointment id as by, through the booking use case.
func (f *depositFixture) cancelAs(by service.Caller, id string) error {
	f.t.Helper()
	a, err := f.book.Load(context.Background(), by, id)
	if err != nil {
		f.t.Fatal(err)
	}
	_, err = f.book.Cancel(context.Background(), by, a, booking.ChangeInput{Reason: "plans changed"})
	return err
}

// deliver hands the appointment's last change to the payments follow-up,
// as the AppointmentChanged consumer does.
func (f *depositFixture) deliver(id string) error {
	f.t.Helper()
	ap := f.appointment(id)
	return f.svc.FollowAppointment(context.Background(), &messages.AppointmentChanged{AppointmentId: ap.ID, StaffId: ap.StaffID,
		ServiceId: ap.ServiceID, ClientId: ap.ClientID, FromStatus: string(persistence.StatusConfirmed), ToStatus: string(ap.Status),
		Version: ap.Version})
}

// mustDeliver delivers the change n times, as redeliveries would.
func (f *depositFixture) mustDeliver(id string, n int) {
	f.t.Helper()
	for range n {
		if err := f.deliver(id); err != nil {
			f.t.Fatalf("follow-up of %s: %v", id, err)
		}
	}
}

// movements lists the keys of the intent's ledger movements (each once).
func (f *depositFixture) movements(intentID string) []string {
	f.t.Helper()
	var keys []string
	f.must(func(ctx context.Context, tx persistence.Tx) error {
		entries, err := tx.PaymentLedgerEntries(ctx, intentID)
		for _, e := range entries {
			if !slices.Contains(keys, e.Key) {
				keys = append(keys, e.Key)
			}
		}
		return err
	})
	return keys
}

// credit is maria's client-credit balance.
func (f *depositFixture) credit() int64 {
	f.t.Helper()
	var credit int64
	f.must(func(ctx context.Context, tx persistence.Tx) (err error) {
		credit, err = tx.CreditBalance(ctx, "maria", f.now())
		return err
	})
	return credit
}

// audited counts the audit entries of action on the intent.
func (f *depositFixture) audited(action, intentID string) int {
	f.t.Helper()
	var n int
	f.must(func(ctx context.Context, tx persistence.Tx) error {
		es, err := tx.AuditList(ctx, persistence.AuditListParams{Subject: "payment/" + intentID, Limit: 100})
		for _, e := range es {
			if e.Action == action {
				n++
			}
		}
		return err
	})
	return n
}

// announced counts the PaymentChanged events of the intent to status to
// in the outbox.
func (f *depositFixture) announced(intentID string, to persistence.IntentStatus) int {
	f.t.Helper()
	var n int
	f.must(func(ctx context.Context, tx persistence.Tx) error {
		pending, err := tx.OutboxPending(ctx, 10_000)
		for _, e := range pending {
			var ev messages.Event
			var pc messages.PaymentChanged
			if proto.Unmarshal(e.Payload, &ev) != nil || ev.Payload.UnmarshalTo(&pc) != nil {
				continue
			}
			if pc.IntentId == intentID && pc.ToStatus == string(to) {
				n++
			}
		}
		return err
	})
	return n
}

// wantVoided checks the deposit was refunded to the card from deposits:
// voided at Wompi, the intent voided, nothing left in deposits or wompi,
// and the movements approved, attached, voided, each once.
func (f *depositFixture) wantVoided(in persistence.PaymentIntent) {
	f.t.Helper()
	if got := f.intent(in.ID); got.Status != persistence.IntentVoided {
		f.t.Fatalf("intent %s, want voided", got.Status)
	}
	if tx, _ := f.fake.Transaction(in.TransactionID); tx.Status != "VOIDED" {
		f.t.Fatalf("at Wompi: %s", tx.Status)
	}
	if d, w := f.balance(persistence.AccountDeposits), f.balance(persistence.AccountWompi); d != 0 || w != 0 {
		f.t.Fatalf("deposits %d, wompi %d after the refund", d, w)
	}
	want := []string{"approved/" + in.TransactionID, "attached/" + in.ID, "voided/" + in.TransactionID}
	if got := f.movements(in.ID); !slices.Equal(got, want) {
		f.t.Fatalf("movements %v, want %v", got, want)
	}
	if a, e := f.audited("payment.voided", in.ID), f.announced(in.ID, persistence.IntentVoided); a != 1 || e != 1 {
		f.t.Fatalf("%d audit entries, %d PaymentChanged events of the void; want one each", a, e)
	}
}

// wantKept checks the deposit was kept as a fee: the intent still
// approved, deposits → deposit_fees once, the money still at Wompi.
func (f *depositFixture) wantKept(in persistence.PaymentIntent) {
	f.t.Helper()
	if got := f.intent(in.ID); got.Status != persistence.IntentApproved || got.Version != in.Version {
		f.t.Fatalf("intent %s v%d, want approved v%d", got.Status, got.Version, in.Version)
	}
	if d, fee, w := f.balance(persistence.AccountDeposits), f.balance(persistence.AccountDepositFees), f.balance(persistence.AccountWompi); d != 0 || fee != -depositMinor || w != depositMinor {
		f.t.Fatalf("deposits %d, deposit_fees %d, wompi %d", d, fee, w)
	}
	want := []string{"approved/" + in.TransactionID, "attached/" + in.ID, "fee/" + in.ID}
	if got := f.movements(in.ID); !slices.Equal(got, want) {
		f.t.Fatalf("movements %v, want %v", got, want)
	}
	if a := f.audited("payment.deposit_kept", in.ID); a != 1 {
		f.t.Fatalf("%d audit entries of the fee", a)
	}
	if tx, _ := f.fake.Transaction(in.TransactionID); tx.Status != "APPROVED" {
		f.t.Fatalf("at Wompi: %s", tx.Status)
	}
}

// TestDepositRefundedOnCancellationIsVoided: maria cancels her paid
// booking before the cut-off; her card payment is voided at Wompi, from
// deposits. Redelivered events and reconciliation change nothing more.
func TestDepositRefundedOnCancellationIsVoided(t *testing.T) {
	withDeposits(t, func(t *testing.T, f *depositFixture) {
		ap, in := f.paidBooking()
		if err := f.cancelAs(maria, ap.ID); err != nil {
			t.Fatalf("client cancel before the cut-off: %v", err)
		}
		f.mustDeliver(ap.ID, 1)
		f.fake.WaitIdle() // the fake's own VOIDED event finds it applied
		f.wantVoided(in)
		voided := f.intent(in.ID)
		f.mustDeliver(ap.ID, 2)
		if _, err := f.svc.Reconcile(context.Background()); err != nil {
			t.Fatal(err)
		}
		if again := f.intent(in.ID); again.Version != voided.Version {
			t.Fatalf("intent changed again: v%d → v%d", voided.Version, again.Version)
		}
		f.wantVoided(in)
		if f.credit() != 0 {
			t.Fatal("voided and credited too")
		}
	})
}

// TestDepositRefundedOnCancellationIsCredited: where Wompi cannot void the
// payment, the cancellation refunds it as client credit, once.
func TestDepositRefundedOnCancellationIsCredited(t *testing.T) {
	withDeposits(t, func(t *testing.T, f *depositFixture) {
		f.noVoid.Store(true)
		ap, in := f.paidBooking()
		if err := f.cancelAs(maria, ap.ID); err != nil {
			t.Fatal(err)
		}
		f.mustDeliver(ap.ID, 3)
		if _, err := f.svc.Reconcile(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := f.intent(in.ID); got.Status != persistence.IntentRefunded {
			t.Fatalf("intent %s, want refunded", got.Status)
		}
		if c, cc, d := f.credit(), f.balance(persistence.AccountClientCredit), f.balance(persistence.AccountDeposits); c != depositMinor || cc != -depositMinor || d != 0 {
			t.Fatalf("maria's credit %d, client_credit %d, deposits %d", c, cc, d)
		}
		want := []string{"approved/" + in.TransactionID, "attached/" + in.ID, "refunded/" + in.ID}
		if got := f.movements(in.ID); !slices.Equal(got, want) {
			t.Fatalf("movements %v, want %v", got, want)
		}
		if a, e := f.audited("payment.refunded", in.ID), f.announced(in.ID, persistence.IntentRefunded); a != 1 || e != 1 {
			t.Fatalf("%d audit entries, %d PaymentChanged events of the refund; want one each", a, e)
		}
	})
}

// TestDepositStaffCancellationRefunds: inside the cut-off the client may
// not cancel; the studio may, and its cancellation refunds the deposit.
func TestDepositStaffCancellationRefunds(t *testing.T) {
	withDeposits(t, func(t *testing.T, f *depositFixture) {
		ap, in := f.paidBooking()
		f.offset.Store(int64(time.Until(f.start.Add(-time.Hour)))) // an hour before the start, inside the 2 h cut-off
		if err := f.cancelAs(maria, ap.ID); codeOf(err) != fault.CodeCutoffPassed {
			t.Fatalf("client cancel inside the cut-off: %v", err)
		}
		if err := f.deliver(ap.ID); err != nil { // a confirmed booking: nothing to settle
			t.Fatal(err)
		}
		if got := f.movements(in.ID); len(got) != 2 {
			t.Fatalf("movements of a live booking: %v", got)
		}
		if err := f.cancelAs(desk, ap.ID); err != nil {
			t.Fatalf("staff cancel inside the cut-off: %v", err)
		}
		f.mustDeliver(ap.ID, 2)
		f.fake.WaitIdle()
		f.wantVoided(in)
	})
}

// TestDepositKeptOnLateCancellation: a cancellation by the client inside
// the cut-off (possible only with a staff override: maria's account also
// has a staff role) keeps the deposit as a fee, once.
func TestDepositKeptOnLateCancellation(t *testing.T) {
	withDeposits(t, func(t *testing.T, f *depositFixture) {
		ap, in := f.paidBooking()
		f.offset.Store(int64(time.Until(f.start.Add(-time.Hour))))
		mariaAtTheDesk := servicetest.As(auth.RoleReceptionist, "maria")
		if err := f.cancelAs(mariaAtTheDesk, ap.ID); err != nil {
			t.Fatalf("overridden late cancel: %v", err)
		}
		f.mustDeliver(ap.ID, 3)
		if _, err := f.svc.Reconcile(context.Background()); err != nil {
			t.Fatal(err)
		}
		f.wantKept(in)
	})
}

// TestDepositKeptOnNoShow: the client did not come; the deposit is kept
// as a fee, once, however often the change is delivered.
func TestDepositKeptOnNoShow(t *testing.T) {
	withDeposits(t, func(t *testing.T, f *depositFixture) {
		ap, in := f.paidBooking()
		f.offset.Store(int64(time.Until(f.start.Add(5 * time.Minute))))
		a, err := f.book.Load(context.Background(), desk, ap.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.book.NoShow(context.Background(), desk, a, booking.ChangeInput{}); err != nil {
			t.Fatalf("no-show: %v", err)
		}
		f.mustDeliver(ap.ID, 3)
		if _, err := f.svc.Reconcile(context.Background()); err != nil {
			t.Fatal(err)
		}
		f.wantKept(in)
		// A later void at Wompi's dashboard comes out of the fee.
		if _, err := f.svc.d.Wompi.VoidTransaction(context.Background(), in.TransactionID); err != nil {
			t.Fatal(err)
		}
		f.fake.WaitIdle()
		if fee, w := f.balance(persistence.AccountDepositFees), f.balance(persistence.AccountWompi); fee != 0 || w != 0 {
			t.Fatalf("deposit_fees %d, wompi %d after the void", fee, w)
		}
	})
}

// TestDepositSettledByReconciliation: the cancellation's event never
// reaches payments (the consumer gave up), and the deposit was paid
// days before, so it is no longer among the intents reconciliation reads
// back from Wompi; reconciliation still refunds it, from the appointment
// that changed.
func TestDepositSettledByReconciliation(t *testing.T) {
	withDeposits(t, func(t *testing.T, f *depositFixture) {
		f.start = f.start.AddDate(0, 0, 5)
		ap, in := f.paidBooking()
		f.offset.Add(int64(3 * 24 * time.Hour))
		if err := f.cancelAs(maria, ap.ID); err != nil {
			t.Fatal(err)
		}
		if got := f.intent(in.ID); got.Status != persistence.IntentApproved {
			t.Fatalf("intent %s before reconciliation", got.Status)
		}
		res, err := f.svc.Reconcile(context.Background())
		if err != nil || res.Failures != 0 {
			t.Fatalf("reconcile: %+v %v", res, err)
		}
		f.fake.WaitIdle()
		f.wantVoided(in)
	})
}

// TestDepositRefundSurvivesStoreFailure: the store fails the refund's
// ledger post, after the intent's change and the credit grant were
// written in that transaction: nothing of it stays, the follow-up fails
// (so the event is redelivered), and the retry refunds once. The same
// for a void: Wompi voided, our apply failed; the retry reads the void
// back instead of crediting too.
func TestDepositRefundSurvivesStoreFailure(t *testing.T) {
	withDeposits(t, func(t *testing.T, f *depositFixture) {
		f.noVoid.Store(true)
		ap, in := f.paidBooking()
		if err := f.cancelAs(maria, ap.ID); err != nil {
			t.Fatal(err)
		}
		f.failing.failing.Store(true)
		if err := f.deliver(ap.ID); !errors.Is(err, errInjected) {
			t.Fatalf("follow-up during the failure: %v", err)
		}
		if got := f.intent(in.ID); got.Status != persistence.IntentApproved || got.Version != in.Version {
			t.Fatalf("intent %s v%d after the failed refund", got.Status, got.Version)
		}
		if c, d := f.credit(), f.balance(persistence.AccountDeposits); c != 0 || d != -depositMinor {
			t.Fatalf("half a refund: credit %d, deposits %d", c, d)
		}
		f.wantMoney()
		f.failing.failing.Store(false)
		f.mustDeliver(ap.ID, 2)
		if got := f.intent(in.ID); got.Status != persistence.IntentRefunded {
			t.Fatalf("intent %s after the retry", got.Status)
		}
		if c, d := f.credit(), f.balance(persistence.AccountDeposits); c != depositMinor || d != 0 {
			t.Fatalf("credit %d, deposits %d after the retry", c, d)
		}

		// The void: another booking an hour later.
		f.noVoid.Store(false)
		f.start = f.start.Add(time.Hour)
		ap, in = f.paidBooking()
		if err := f.cancelAs(maria, ap.ID); err != nil {
			t.Fatal(err)
		}
		f.failing.failing.Store(true)
		if err := f.deliver(ap.ID); !errors.Is(err, errInjected) {
			t.Fatalf("follow-up during the failure: %v", err)
		}
		if got := f.intent(in.ID); got.Status != persistence.IntentApproved {
			t.Fatalf("intent %s after the failed apply of the void", got.Status)
		}
		f.failing.failing.Store(false)
		f.mustDeliver(ap.ID, 1)
		f.fake.WaitIdle()
		if got := f.intent(in.ID); got.Status != persistence.IntentVoided {
			t.Fatalf("intent %s after the retry, want voided", got.Status)
		}
		if c := f.credit(); c != depositMinor {
			t.Fatalf("credit %d: the void was credited too", c)
		}
		// Wompi holds only the first booking's payment, owed to maria as
		// credit.
		if d, w := f.balance(persistence.AccountDeposits), f.balance(persistence.AccountWompi); d != 0 || w != depositMinor {
			t.Fatalf("deposits %d, wompi %d", d, w)
		}
	})
}

// TestDepositRefundWaitsOutWompi: Wompi does not answer the void; the
// event is acknowledged anyway (one event at a time: it must not hold the
// others back) and reconciliation refunds the deposit once Wompi answers.
func TestDepositRefundWaitsOutWompi(t *testing.T) {
	withDeposits(t, func(t *testing.T, f *depositFixture) {
		ap, in := f.paidBooking()
		if err := f.cancelAs(maria, ap.ID); err != nil {
			t.Fatal(err)
		}
		f.voidDown.Store(true)
		if err := f.deliver(ap.ID); err != nil {
			t.Fatalf("follow-up with Wompi down: %v, want nil (left for reconciliation)", err)
		}
		res, err := f.svc.Reconcile(context.Background())
		if err != nil || res.Failures == 0 {
			t.Fatalf("reconcile with voids failing: %+v %v, want failures counted", res, err)
		}
		if got := f.intent(in.ID); got.Status != persistence.IntentApproved || f.balance(persistence.AccountDeposits) != -depositMinor {
			t.Fatalf("intent %s, deposits %d while Wompi is down", got.Status, f.balance(persistence.AccountDeposits))
		}
		f.voidDown.Store(false)
		if res, err := f.svc.Reconcile(context.Background()); err != nil || res.Failures != 0 {
			t.Fatalf("reconcile: %+v %v", res, err)
		}
		f.fake.WaitIdle()
		f.wantVoided(in)
	})
}

// TestDepositApprovedAfterANoShowIsKept: maria's payment is still pending
// at Wompi when the desk confirms her booking; she does not come, and
// only then is the payment approved. It belonged to the booking: attached
// and kept as a fee, not refunded as a payment for a slot it could not
// confirm.
func TestDepositApprovedAfterANoShowIsKept(t *testing.T) {
	withDeposits(t, func(t *testing.T, f *depositFixture) {
		ap := f.hold(maria)
		co := f.mustPayDeposit(maria, ap.ID)
		f.fake.Outcome(co.Intent.ID, wompifake.Pending)
		tx := f.checkout(co, wompifake.Sandbox)
		a, err := f.book.Load(context.Background(), desk, ap.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.book.Confirm(context.Background(), desk, a, booking.ChangeInput{}); err != nil {
			t.Fatalf("desk confirm: %v", err)
		}
		f.offset.Store(int64(time.Until(f.start.Add(5 * time.Minute))))
		if a, err = f.book.Load(context.Background(), desk, ap.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.book.NoShow(context.Background(), desk, a, booking.ChangeInput{}); err != nil {
			t.Fatalf("no-show: %v", err)
		}
		f.mustDeliver(ap.ID, 1) // the payment is pending: nothing to settle yet
		if err := f.fake.Settle(tx.ID, wompifake.Approve); err != nil {
			t.Fatal(err)
		}
		f.fake.WaitIdle()
		f.mustDeliver(ap.ID, 2)
		f.wantKept(f.intent(co.Intent.ID))
	})
}
