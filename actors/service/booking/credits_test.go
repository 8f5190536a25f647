package booking

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/schedule"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/actors/testwait"
	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/pgtest"
	"github.com/spa-engine/spa/persistence/sqlite/sqlitetest"
)

// Giving back what an appointment spent (a package session, voucher
// debits) when it is cancelled within the policy or its hold lapses: in
// the transaction that records the cancellation or the lapse, so a store
// failure fails both and loses nothing.

// giveBackFailing fails the give-back of every transaction while failing
// is set: the appointment's change has been written in that transaction
// by then, so it fails a cancellation or a lapse midway.
type giveBackFailing struct {
	persistence.Store
	failing atomic.Bool
	failed  atomic.Int64 // give-backs failed
}

var errGiveBack = errors.New("injected give-back failure")

func (s *giveBackFailing) InTx(ctx context.Context, fn func(persistence.Tx) error) error {
	return s.Store.InTx(ctx, func(tx persistence.Tx) error { return fn(giveBackTx{tx, s}) })
}

type giveBackTx struct {
	persistence.Tx
	s *giveBackFailing
}

func (t giveBackTx) PackageRelease(ctx context.Context, appointmentID string, at time.Time) error {
	if t.s.failing.Load() {
		t.s.failed.Add(1)
		return errGiveBack
	}
	return t.Tx.PackageRelease(ctx, appointmentID, at)
}

func (t giveBackTx) VoucherReverse(ctx context.Context, appointmentID string, at time.Time) ([]persistence.VoucherDebit, error) {
	if t.s.failing.Load() {
		t.s.failed.Add(1)
		return nil, errGiveBack
	}
	return t.Tx.VoucherReverse(ctx, appointmentID, at)
}

// creditsFixture is the booking fixture over a store whose give-backs can
// fail, with a clock that moves (offset from now), and maria holding a
// package of four facials and a voucher of 20 000.
type creditsFixture struct {
	*fixture
	faulty  *giveBackFailing
	offset  atomic.Int64
	pkg     persistence.Package
	voucher string // its code
}

// withCredits runs fn against SQLite, and PostgreSQL when
// TEST_DATABASE_URL is set, with cfg for the schedule actors.
func withCredits(t *testing.T, cfg schedule.Config, fn func(t *testing.T, f *creditsFixture)) {
	drivers := []struct {
		name string
		open func(t *testing.T) persistence.Store
	}{{"sqlite", func(t *testing.T) persistence.Store { return sqlitetest.Open(t, persistence.Options{}) }}}
	if pgtest.Wanted() {
		drivers = append(drivers, struct {
			name string
			open func(t *testing.T) persistence.Store
		}{"postgres", func(t *testing.T) persistence.Store { return pgtest.Open(t, "booking", persistence.Options{}) }})
	}
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			f := &creditsFixture{faulty: &giveBackFailing{Store: d.open(t)}}
			f.fixture = newFixtureOn(t, f.faulty, func() time.Time { return now.Add(time.Duration(f.offset.Load())) }, cfg)
			err := f.inTx(func(ctx context.Context, tx persistence.Tx) (err error) {
				if f.pkg, err = f.svc.GrantPackage(ctx, tx, owner, PackageInput{ClientID: "maria", Name: "Four facials",
					ServiceIDs: []string{"facial"}, Sessions: 4, ExpiresAt: now.AddDate(0, 6, 0)}); err != nil {
					return err
				}
				_, f.voucher, err = f.svc.IssueVoucher(ctx, tx, owner, VoucherInput{ClientID: "maria", BalanceMinor: 20_000, ExpiresAt: now.AddDate(0, 6, 0)})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			fn(t, f)
		})
	}
}

// spend holds start with ana on a package session and pays 5 000 of it
// with the voucher.
func (f *creditsFixture) spend(start time.Time) persistence.Appointment {
	f.t.Helper()
	ap := f.hold(maria, HoldInput{ServiceID: "facial", StaffID: "ana", Start: start, PackageID: f.pkg.ID})
	err := f.inTx(func(ctx context.Context, tx persistence.Tx) error {
		a, err := f.svc.LoadIn(ctx, tx, maria, ap.ID)
		if err != nil {
			return err
		}
		_, err = f.svc.PayWithVoucher(ctx, tx, maria, a, VoucherPayInput{Code: f.voucher, AmountMinor: 5_000})
		return err
	})
	if err != nil {
		f.t.Fatalf("pay %s: %v", ap.ID, err)
	}
	return ap
}

// wantSpent fails unless maria's package has used sessions and her
// voucher balance left, exactly.
func (f *creditsFixture) wantSpent(what string, used int, balance int64) {
	f.t.Helper()
	var p persistence.Package
	var v persistence.Voucher
	f.tx(func(ctx context.Context, tx persistence.Tx) (err error) {
		if p, err = tx.PackageGet(ctx, f.pkg.ID); err != nil {
			return err
		}
		v, err = tx.VoucherGetByCode(ctx, f.voucher, now)
		return err
	})
	if p.SessionsUsed != used || v.BalanceMinor != balance {
		f.t.Fatalf("%s: %d sessions used, balance %d; want %d and %d", what, p.SessionsUsed, v.BalanceMinor, used, balance)
	}
}

func (f *creditsFixture) stored(id string) persistence.Appointment {
	f.t.Helper()
	var ap persistence.Appointment
	f.tx(func(ctx context.Context, tx persistence.Tx) (err error) {
		ap, err = tx.AppointmentGet(ctx, id)
		return err
	})
	return ap
}

// TestGiveBackFailingFailsTheCancel: when the store fails while giving
// back what a cancelled appointment spent, the cancellation fails with it
// (retryable) and nothing is half done; the retry cancels and gives back
// exactly once, and giving back again (a redelivery, a backstop) changes
// nothing.
func TestGiveBackFailingFailsTheCancel(t *testing.T) {
	withCredits(t, schedule.Config{}, func(t *testing.T, f *creditsFixture) {
		ctx := context.Background()
		ap := f.spend(at(10, 0)) // three hours ahead, cut-off two
		f.wantSpent("after paying", 1, 15_000)

		f.faulty.failing.Store(true)
		_, err := f.svc.Cancel(ctx, maria, f.load(maria, ap.ID), ChangeInput{Reason: "changed my mind"})
		wantCode(t, err, fault.CodeUnavailable)
		f.faulty.failing.Store(false)
		if got := f.stored(ap.ID); got.Status != persistence.StatusHeld {
			t.Fatalf("a cancel whose give-back failed is stored as %s", got.Status)
		}
		f.wantSpent("after the failed cancel", 1, 15_000)

		// The client retries (the calendar's next activation answers).
		done, err := f.svc.Cancel(ctx, maria, f.load(maria, ap.ID), ChangeInput{Reason: "changed my mind"})
		if err != nil || done.Status != persistence.StatusCancelled {
			t.Fatalf("retried cancel: %+v, %v", done, err)
		}
		f.wantSpent("after the retried cancel", 0, 20_000)

		for range 2 {
			f.tx(func(ctx context.Context, tx persistence.Tx) error {
				return persistence.ReleaseCredits(ctx, tx, ap.ID, now)
			})
		}
		f.wantSpent("after giving back again", 0, 20_000)
		_, err = f.svc.Cancel(ctx, maria, f.load(maria, ap.ID), ChangeInput{})
		wantCode(t, err, fault.CodeInvalidTransition)
		f.wantSpent("after cancelling twice", 0, 20_000)
	})
}

// TestLateCancelKeepsCredits: a booking cancelled inside the service's
// cut-off (by staff, overriding it) keeps what it spent, as does a
// no-show; a hold cancelled inside the cut-off gives it back, as its
// lapse would.
func TestLateCancelKeepsCredits(t *testing.T) {
	withCredits(t, schedule.Config{}, func(t *testing.T, f *creditsFixture) {
		ctx := context.Background()
		late := f.spend(at(8, 0)) // an hour ahead, cut-off two
		if _, err := f.svc.Confirm(ctx, maria, f.load(maria, late.ID), ChangeInput{}); err != nil {
			t.Fatal(err)
		}
		_, err := f.svc.Cancel(ctx, maria, f.load(maria, late.ID), ChangeInput{})
		wantCode(t, err, fault.CodeCutoffPassed)
		if _, err := f.svc.Cancel(ctx, desk, f.load(desk, late.ID), ChangeInput{Reason: "client called late"}); err != nil {
			t.Fatal(err)
		}
		f.wantSpent("after a late cancel", 1, 15_000)

		held := f.spend(at(8, 30)) // inside the cut-off too, but only held
		f.wantSpent("after the second hold", 2, 10_000)
		if _, err := f.svc.Cancel(ctx, maria, f.load(maria, held.ID), ChangeInput{}); err != nil {
			t.Fatal(err)
		}
		f.wantSpent("after cancelling a hold", 1, 15_000)

		shown := f.spend(at(9, 0))
		if _, err := f.svc.Confirm(ctx, maria, f.load(maria, shown.ID), ChangeInput{}); err != nil {
			t.Fatal(err)
		}
		f.offset.Store(int64(2*time.Hour + 10*time.Minute)) // 09:10
		if _, err := f.svc.NoShow(ctx, desk, f.load(desk, shown.ID), ChangeInput{}); err != nil {
			t.Fatal(err)
		}
		f.wantSpent("after a no-show", 2, 10_000)
	})
}

// TestLapsedHoldGivesBack: a hold that lapses gives back its session and
// voucher debit in the write that records the lapse, with no consumer
// running; were that write to fail, the hold is not recorded as lapsed
// either, and the calendar's next activation records both.
func TestLapsedHoldGivesBack(t *testing.T) {
	withCredits(t, schedule.Config{HoldTTL: 100 * time.Millisecond}, func(t *testing.T, f *creditsFixture) {
		ctx := context.Background()
		first := f.spend(at(10, 0))
		f.offset.Store(int64(time.Second))
		testwait.For(t, 5*time.Second, "the lapsed hold to be recorded", func() bool {
			return f.stored(first.ID).Status == persistence.StatusExpired
		})
		f.wantSpent("after the hold lapsed", 0, 20_000)

		second := f.spend(at(11, 0))
		f.faulty.failing.Store(true)
		f.offset.Store(int64(2 * time.Second))
		// The failed write retires the calendar; a question to it
		// activates the next one, whose timer records the lapse again.
		testwait.For(t, 5*time.Second, "the lapse's write to fail", func() bool {
			return f.faulty.failed.Load() > 0
		})
		if got := f.stored(second.ID); got.Status != persistence.StatusHeld {
			t.Fatalf("a lapse whose give-back failed is stored as %s", got.Status)
		}
		f.wantSpent("after the lapse failed to be written", 1, 15_000)
		f.faulty.failing.Store(false)
		testwait.For(t, 5*time.Second, "the lapse to be recorded by the next activation", func() bool {
			f.deps.Calendars.Change(ctx, "ana", &schedule.Confirm{AppointmentID: "wake-up"}) //nolint:errcheck // only wakes the calendar
			return f.stored(second.ID).Status == persistence.StatusExpired
		})
		f.wantSpent("after the lapse was recorded", 0, 20_000)
	})
}

// TestRetriedHoldSpendsNothingTwice: a hold retried under its id (as a
// resend of a keyed request is) after the appointment was cancelled is
// answered with that appointment, and spends no session on it again.
func TestRetriedHoldSpendsNothingTwice(t *testing.T) {
	withCredits(t, schedule.Config{}, func(t *testing.T, f *creditsFixture) {
		ctx := context.Background()
		in := HoldInput{ID: "apt_resent", ServiceID: "facial", StaffID: "ana", Start: at(10, 0), PackageID: f.pkg.ID}
		f.hold(maria, in)
		f.wantSpent("after the hold", 1, 20_000)
		if _, err := f.svc.Cancel(ctx, maria, f.load(maria, in.ID), ChangeInput{}); err != nil {
			t.Fatal(err)
		}
		f.wantSpent("after cancelling", 0, 20_000)
		again, err := f.svc.Hold(ctx, maria, in)
		if err != nil || again.ID != in.ID || again.Status != persistence.StatusCancelled {
			t.Fatalf("resent hold: %+v, %v", again, err)
		}
		f.wantSpent("after the resent hold", 0, 20_000)
	})
}
