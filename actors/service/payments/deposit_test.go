package payments

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/inventory/inventorytest"
	"github.com/spa-engine/spa/actors/providers/wompi"
	"github.com/spa-engine/spa/actors/providers/wompi/wompifake"
	"github.com/spa-engine/spa/actors/resource"
	"github.com/spa-engine/spa/actors/schedule"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/booking"
	"github.com/spa-engine/spa/actors/service/catalogue"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/actors/service/servicetest"
	"github.com/spa-engine/spa/persistence"
)

// depositMinor is the "peel" service's fixed deposit: 20,000.00 COP of
// its 80,000.00.
const depositMinor = 2_000_000

// cancelCutoff is the "peel" service's cancellation cut-off; its slot
// (tomorrow 10:00 in Bogotá) is always further away than that when a
// test starts.
const cancelCutoff = 2 * time.Hour

// depositFixture is the payments service with deposits enabled over real
// schedule and resource actors and the booking use cases, a fake Wompi
// posting to a webhook that calls Service.Event, and a clock that moves
// (offset from the wall clock) shared by all of them.
type depositFixture struct {
	harness
	store persistence.Store
	// failing is the payments service's view of store: it fails every
	// ledger post while set (the calendars write to store directly).
	failing  *failingStore
	svc      *Service
	book     *booking.Service
	apps     failableApps // what the payments service confirms through: book
	offset   atomic.Int64
	noVoid   atomic.Bool // the provider refuses every void (not a card)
	voidDown atomic.Bool // voids fail as if Wompi did not answer
	start    time.Time   // tomorrow 10:00 in Bogotá, a free slot of "sol"
	bogota   *time.Location
}

// failableApps is the booking service, except that while fail is set the
// deposit follow-up's confirm fails (a calendar that cannot be reached).
type failableApps struct {
	Appointments
	fail atomic.Bool
}

func (a *failableApps) ConfirmPaid(ctx context.Context, ap persistence.Appointment, intentID string) (persistence.Appointment, error) {
	if a.fail.Load() {
		return persistence.Appointment{}, errors.New("calendar unreachable")
	}
	return a.Appointments.ConfirmPaid(ctx, ap, intentID)
}

// noVoidProvider is the Wompi client, refusing voids while noVoid is set
// and failing them while voidDown is.
type noVoidProvider struct {
	*wompi.Client
	f *depositFixture
}

func (p noVoidProvider) VoidTransaction(ctx context.Context, id string) (wompi.Transaction, error) {
	if p.f.noVoid.Load() {
		return wompi.Transaction{}, wompi.ErrNotVoidable
	}
	if p.f.voidDown.Load() {
		return wompi.Transaction{}, fmt.Errorf("%w: void timed out", wompi.ErrUnavailable)
	}
	return p.Client.VoidTransaction(ctx, id)
}

func (f *depositFixture) now() time.Time { return time.Now().Add(time.Duration(f.offset.Load())) }

func withDeposits(t *testing.T, fn func(t *testing.T, f *depositFixture)) {
	for _, d := range inventorytest.Drivers() {
		t.Run(d.Name, func(t *testing.T) {
			f := &depositFixture{harness: harness{t: t}, store: d.Open(t)}
			f.db = f.store
			f.bogota, _ = time.LoadLocation("America/Bogota")
			tomorrow := time.Now().In(f.bogota).AddDate(0, 0, 1)
			f.start = time.Date(tomorrow.Year(), tomorrow.Month(), tomorrow.Day(), 10, 0, 0, 0, f.bogota)
			quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

			sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
			sm, err := schedule.NewMetrics(prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			sched, err := schedule.NewDirectory(sys.Root, schedule.Deps{Store: f.store, Now: f.now, Metrics: sm,
				Config: schedule.Config{Step: 30 * time.Minute}, Log: quiet}, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			rm, err := resource.NewMetrics(prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			res, err := resource.NewDirectory(sys.Root, resource.Deps{Store: f.store, Now: f.now, Metrics: rm, Log: quiet}, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { sched.Stop(5 * time.Second); res.Stop(5 * time.Second); sys.Shutdown() })

			var week [7][]persistence.ClockRange
			for i := range week {
				week[i] = []persistence.ClockRange{{StartMinute: 8 * 60, EndMinute: 21 * 60}}
			}
			f.must(func(ctx context.Context, tx persistence.Tx) error {
				if _, err := tx.StaffPut(ctx, persistence.StaffMember{ID: "sol", Name: "Sol", Skills: []string{"peel"},
					TimeZone: "America/Bogota", Weekly: week, Active: true}); err != nil {
					return err
				}
				_, err := tx.ServicePut(ctx, persistence.Service{ID: "peel", Name: "Peel", Category: "face", Duration: 30 * time.Minute,
					PriceMinor: 8_000_000, RequiredSkills: []string{"peel"}, DepositPolicy: persistence.DepositFixed,
					DepositValue: depositMinor, CancelCutoff: cancelCutoff, Active: true})
				return err
			})
			f.book = booking.New(booking.Deps{Store: f.store, Calendars: schedule.NewClient(sched), Resources: resource.NewClient(res),
				Catalogue: catalogue.NewCache(f.store, 0), Logger: quiet, Now: f.now})

			f.fake = wompifake.New(keys)
			t.Cleanup(f.fake.Close)
			f.fake.SetNow(f.now)
			client, err := wompi.New(wompi.Config{PublicKey: keys.Public, PrivateKey: keys.Private, IntegritySecret: keys.Integrity,
				EventsSecret: keys.Events, BaseURL: f.fake.BaseURL(), CheckoutURL: f.fake.CheckoutURL()}, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(client.CloseIdleConnections)
			f.failing = &failingStore{Store: f.store}
			f.svc = New(Deps{Store: f.failing, Wompi: noVoidProvider{client, f}, Log: quiet, Now: f.now})
			f.apps.Appointments = f.book
			f.svc.EnableDeposits(&f.apps)
			hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				_, err := f.svc.Event(context.Background(), body, r.Header.Get(wompi.ChecksumHeader), "req-hook")
				switch {
				case err == nil:
					w.WriteHeader(http.StatusOK)
				case errors.Is(err, ErrForged):
					w.WriteHeader(http.StatusUnauthorized)
				default:
					w.WriteHeader(http.StatusInternalServerError)
				}
			}))
			t.Cleanup(hook.Close)
			f.fake.SetWebhook(hook.URL)
			fn(t, f)
			f.fake.WaitIdle()
			f.wantMoney()
		})
	}
}

// hold holds the fixture's slot for by.
func (f *depositFixture) hold(by service.Caller) persistence.Appointment {
	f.t.Helper()
	ap, err := f.book.Hold(context.Background(), by, booking.HoldInput{ServiceID: "peel", StaffID: "sol", Start: f.start})
	if err != nil {
		f.t.Fatalf("hold for %s: %v", by.Subject, err)
	}
	return ap
}

func (f *depositFixture) payDeposit(by service.Caller, id string) (Checkout, bool, error) {
	var co Checkout
	var created bool
	err := f.store.InTx(context.Background(), func(tx persistence.Tx) (err error) {
		co, created, err = f.svc.PayDeposit(context.Background(), tx, by, id)
		return err
	})
	return co, created, err
}

func (f *depositFixture) mustPayDeposit(by service.Caller, id string) Checkout {
	f.t.Helper()
	co, _, err := f.payDeposit(by, id)
	if err != nil {
		f.t.Fatalf("PayDeposit: %v", err)
	}
	return co
}

func (f *depositFixture) appointment(id string) persistence.Appointment {
	f.t.Helper()
	var ap persistence.Appointment
	f.must(func(ctx context.Context, tx persistence.Tx) (err error) {
		ap, err = tx.AppointmentGet(ctx, id)
		return err
	})
	return ap
}

// confirms counts the appointment's transitions to confirmed, and the
// actor of the last one.
func (f *depositFixture) confirms(id string) (n int, by string) {
	f.t.Helper()
	f.must(func(ctx context.Context, tx persistence.Tx) error {
		list, err := tx.TransitionList(ctx, id)
		for _, tr := range list {
			if tr.To == persistence.StatusConfirmed {
				n, by = n+1, tr.ActorID
			}
		}
		return err
	})
	return n, by
}

// liveInSlot lists the live (held unexpired or confirmed) appointments of
// the fixture's slot.
func (f *depositFixture) liveInSlot() []persistence.Appointment {
	f.t.Helper()
	var live []persistence.Appointment
	f.must(func(ctx context.Context, tx persistence.Tx) error {
		list, err := tx.AppointmentList(ctx, persistence.AppointmentRange{StaffID: "sol", From: f.start, To: f.start.Add(time.Hour)})
		for _, ap := range list {
			if ap.Live(f.now()) {
				live = append(live, ap)
			}
		}
		return err
	})
	return live
}

// wantMoney checks the journal: it sums to zero, nothing is left in
// deposits_held, and Σ approved = Σ attached + Σ refunded (voided or
// credited) + Σ suspense, to the cent.
func (f *depositFixture) wantMoney() {
	f.t.Helper()
	var bal map[string]int64
	f.must(func(ctx context.Context, tx persistence.Tx) (err error) {
		bal, err = tx.PaymentLedgerBalances(ctx)
		return err
	})
	var sum int64
	for _, v := range bal {
		sum += v
	}
	if sum != 0 || bal[persistence.AccountDepositsHeld] != 0 {
		f.t.Fatalf("journal %v: sums to %d, deposits_held %d", bal, sum, bal[persistence.AccountDepositsHeld])
	}
}

// balance is one account's balance.
func (f *depositFixture) balance(account string) int64 {
	f.t.Helper()
	var bal map[string]int64
	f.must(func(ctx context.Context, tx persistence.Tx) (err error) {
		bal, err = tx.PaymentLedgerBalances(ctx)
		return err
	})
	return bal[account]
}

// codeOf is err's fault code ("" for none).
func codeOf(err error) string {
	if fe, ok := fault.From(err); ok {
		return fe.Code
	}
	return ""
}

var (
	maria = servicetest.As(auth.RoleClient, "maria")
	juan  = servicetest.As(auth.RoleClient, "juan")
)

// TestDepositApprovedConfirms: the client cannot confirm a hold whose
// deposit is due; paying it online confirms the appointment as
// "payments", and the deposit is attached (deposits, not deposits_held).
func TestDepositApprovedConfirms(t *testing.T) {
	withDeposits(t, func(t *testing.T, f *depositFixture) {
		ap := f.hold(maria)
		a, err := f.book.Load(context.Background(), maria, ap.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.book.Confirm(context.Background(), maria, a, booking.ChangeInput{}); codeOf(err) != fault.CodeForbidden {
			t.Fatalf("client confirm with a deposit due: %v", err)
		}
		if _, _, err := f.payDeposit(juan, ap.ID); codeOf(err) != fault.CodeNotFound {
			t.Fatalf("another client's hold: %v", err)
		}
		co, created, err := f.payDeposit(maria, ap.ID)
		if err != nil || !created || co.Intent.AmountMinor != depositMinor || !co.Intent.ExpiresAt.Equal(ap.HoldExpiresAt) {
			t.Fatalf("PayDeposit: %+v created=%v %v (hold expires %v)", co.Intent, created, err, ap.HoldExpiresAt)
		}
		if again, created, err := f.payDeposit(maria, ap.ID); err != nil || created || again.Intent.ID != co.Intent.ID {
			t.Fatalf("second PayDeposit: %+v %v %v", again.Intent, created, err)
		}
		f.checkout(co, wompifake.Approve)
		if got := f.appointment(ap.ID); got.Status != persistence.StatusConfirmed {
			t.Fatalf("appointment %s after approval", got.Status)
		}
		if n, by := f.confirms(ap.ID); n != 1 || by != booking.PaymentsActor {
			t.Fatalf("%d confirm transitions, last by %q", n, by)
		}
		if in := f.intent(co.Intent.ID); in.Status != persistence.IntentApproved {
			t.Fatalf("intent %s", in.Status)
		}
		if got := f.balance(persistence.AccountDeposits); got != -depositMinor {
			t.Fatalf("deposits balance %d", got)
		}
		if _, _, err := f.payDeposit(maria, ap.ID); codeOf(err) != fault.CodeInvalidTransition {
			t.Fatalf("paying a confirmed appointment: %v", err)
		}
	})
}

// TestDepositDeclinedFreesTheSlot: a declined payment cancels the hold at
// once (reason "deposit declined"), and another client takes the slot
// without waiting for the hold to lapse.
func TestDepositDeclinedFreesTheSlot(t *testing.T) {
	withDeposits(t, func(t *testing.T, f *depositFixture) {
		ap := f.hold(maria)
		co := f.mustPayDeposit(maria, ap.ID)
		f.checkout(co, wompifake.Decline)
		if got := f.appointment(ap.ID); got.Status != persistence.StatusCancelled {
			t.Fatalf("appointment %s after a declined deposit", got.Status)
		}
		var reason string
		f.must(func(ctx context.Context, tx persistence.Tx) error {
			list, err := tx.TransitionList(ctx, ap.ID)
			if len(list) > 0 {
				reason = list[len(list)-1].Reason
			}
			return err
		})
		if reason != "deposit declined" {
			t.Fatalf("cancel reason %q", reason)
		}
		f.hold(juan) // at once, well inside maria's hold TTL
		if live := f.liveInSlot(); len(live) != 1 || live[0].ClientID != "juan" {
			t.Fatalf("live in the slot: %+v", live)
		}
	})
}

// lostSlot has maria pay late: her payment stays pending at Wompi while
// her hold lapses and juan books the slot (his own deposit approved);
// then her payment is approved. It returns her intent.
func (f *depositFixture) lostSlot() (mariaAp persistence.Appointment, in persistence.PaymentIntent, juanAp persistence.Appointment) {
	f.t.Helper()
	mariaAp = f.hold(maria)
	co := f.mustPayDeposit(maria, mariaAp.ID)
	f.fake.Outcome(co.Intent.ID, wompifake.Pending)
	tx := f.checkout(co, wompifake.Sandbox)
	f.offset.Add(int64(11 * time.Minute)) // past the 10-minute hold
	juanAp = f.hold(juan)
	f.checkout(f.mustPayDeposit(juan, juanAp.ID), wompifake.Approve)
	if err := f.fake.Settle(tx.ID, wompifake.Approve); err != nil {
		f.t.Fatal(err)
	}
	f.fake.WaitIdle()
	return mariaAp, f.intent(co.Intent.ID), juanAp
}

// TestDepositApprovedAfterTheSlotWasLostIsVoided: the late approval
// cannot confirm maria's lapsed hold; her card payment is voided at
// Wompi, and the slot holds juan's booking only.
func TestDepositApprovedAfterTheSlotWasLostIsVoided(t *testing.T) {
	withDeposits(t, func(t *testing.T, f *depositFixture) {
		mariaAp, in, juanAp := f.lostSlot()
		if in.Status != persistence.IntentVoided {
			t.Fatalf("maria's late payment is %s, want voided", in.Status)
		}
		if tx, _ := f.fake.Transaction(in.TransactionID); tx.Status != "VOIDED" {
			t.Fatalf("at Wompi: %s", tx.Status)
		}
		if got := f.appointment(mariaAp.ID); got.Status == persistence.StatusConfirmed {
			t.Fatal("maria's lapsed hold was confirmed")
		}
		live := f.liveInSlot()
		if len(live) != 1 || live[0].ID != juanAp.ID || live[0].Status != persistence.StatusConfirmed {
			t.Fatalf("live in the slot: %+v", live)
		}
		if got := f.balance(persistence.AccountDeposits); got != -depositMinor {
			t.Fatalf("deposits %d: only juan's is attached", got)
		}
		if got := f.balance(persistence.AccountWompi); got != depositMinor {
			t.Fatalf("wompi %d: only juan's payment is held", got)
		}
	})
}

// TestDepositApprovedAfterTheSlotWasLostIsCredited: where Wompi cannot
// void the payment, it is refunded as client credit, once.
func TestDepositApprovedAfterTheSlotWasLostIsCredited(t *testing.T) {
	withDeposits(t, func(t *testing.T, f *depositFixture) {
		f.noVoid.Store(true)
		_, in, _ := f.lostSlot()
		if in.Status != persistence.IntentRefunded {
			t.Fatalf("maria's late payment is %s, want refunded", in.Status)
		}
		// Followed up again (reconciliation, a redelivery): nothing twice.
		if err := f.svc.followDeposit(context.Background(), in.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Reconcile(context.Background()); err != nil {
			t.Fatal(err)
		}
		var credit int64
		f.must(func(ctx context.Context, tx persistence.Tx) (err error) {
			credit, err = tx.CreditBalance(ctx, "maria", f.now())
			return err
		})
		if credit != depositMinor || f.balance(persistence.AccountClientCredit) != -depositMinor {
			t.Fatalf("maria's credit %d, client_credit account %d", credit, f.balance(persistence.AccountClientCredit))
		}
		if live := f.liveInSlot(); len(live) != 1 || live[0].ClientID != "juan" {
			t.Fatalf("live in the slot: %+v", live)
		}
	})
}

// TestDepositDuplicateApprovalsConfirmOnce: every event delivered four
// times, and the follow-up run again by hand and by reconciliation: one
// confirmation, one attachment.
func TestDepositDuplicateApprovalsConfirmOnce(t *testing.T) {
	withDeposits(t, func(t *testing.T, f *depositFixture) {
		f.fake.DefaultDelivery(wompifake.Delivery{Duplicates: 3})
		ap := f.hold(maria)
		co := f.mustPayDeposit(maria, ap.ID)
		f.checkout(co, wompifake.Approve)
		for range 3 {
			if err := f.svc.followDeposit(context.Background(), co.Intent.ID); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := f.svc.Reconcile(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n, _ := f.confirms(ap.ID); n != 1 {
			t.Fatalf("%d confirmations", n)
		}
		if got := f.balance(persistence.AccountDeposits); got != -depositMinor {
			t.Fatalf("deposits %d", got)
		}
	})
}

// TestDepositReconciliationAlone: every event dropped; reconciliation
// reads the approval back from Wompi and the appointment is confirmed.
func TestDepositReconciliationAlone(t *testing.T) {
	withDeposits(t, func(t *testing.T, f *depositFixture) {
		f.fake.DefaultDelivery(wompifake.Delivery{Drop: true})
		ap := f.hold(maria)
		co := f.mustPayDeposit(maria, ap.ID)
		f.checkout(co, wompifake.Approve)
		if got := f.appointment(ap.ID); got.Status != persistence.StatusHeld {
			t.Fatalf("appointment %s before reconciliation", got.Status)
		}
		res, err := f.svc.Reconcile(context.Background())
		if err != nil || res.Applied != 1 {
			t.Fatalf("reconcile: %+v %v", res, err)
		}
		if got := f.appointment(ap.ID); got.Status != persistence.StatusConfirmed {
			t.Fatalf("appointment %s after reconciliation", got.Status)
		}
	})
}

// TestDepositCoveredByVoucher: a voucher paying part of the deposit
// lowers the payment asked; one paying all of it lets the client confirm
// directly, with nothing to pay online.
func TestDepositCoveredByVoucher(t *testing.T) {
	withDeposits(t, func(t *testing.T, f *depositFixture) {
		owner := servicetest.As(auth.RoleAdmin, "owner")
		var code string
		f.must(func(ctx context.Context, tx persistence.Tx) (err error) {
			_, code, err = f.book.IssueVoucher(ctx, tx, owner, booking.VoucherInput{ClientID: "maria", BalanceMinor: depositMinor + 500_000,
				ExpiresAt: f.now().AddDate(0, 6, 0)})
			return err
		})
		ap := f.hold(maria)
		voucherPays := func(amount int64) {
			t.Helper()
			f.must(func(ctx context.Context, tx persistence.Tx) error {
				a, err := f.book.LoadIn(ctx, tx, maria, ap.ID)
				if err != nil {
					return err
				}
				_, err = f.book.PayWithVoucher(ctx, tx, maria, a, booking.VoucherPayInput{Code: code, AmountMinor: amount})
				return err
			})
		}
		voucherPays(500_000)
		co, _, err := f.payDeposit(maria, ap.ID)
		if err != nil || co.Intent.AmountMinor != depositMinor-500_000 {
			t.Fatalf("deposit with 5,000.00 paid by voucher: %+v %v", co.Intent, err)
		}

		// Another hold, its whole deposit paid by the voucher.
		f.start = f.start.Add(time.Hour)
		ap = f.hold(maria)
		voucherPays(depositMinor)
		if _, _, err := f.payDeposit(maria, ap.ID); codeOf(err) != fault.CodeConflict {
			t.Fatalf("paying a covered deposit: %v", err)
		}
		a, err := f.book.Load(context.Background(), maria, ap.ID)
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.book.Confirm(context.Background(), maria, a, booking.ChangeInput{})
		if err != nil || got.Status != persistence.StatusConfirmed {
			t.Fatalf("client confirm of a covered deposit: %+v %v", got, err)
		}
	})
}

// TestDepositRace: clients race for deposit slots through the fake
// Wompi, each payment approved, declined or left pending (approved late,
// after its hold lapsed), its events delivered once, twice or never (at
// random); the clock then passes the holds' TTL, a second wave books what
// is free, the late payments are approved and reconciliation runs. Then
// every slot has at most one confirmed appointment, each with one
// attached deposit; every approved payment is attached to a confirmed
// appointment or refunded; no appointment holds an approved payment while
// not confirmed; Σ approved = Σ attached + Σ refunded, to the cent. At
// the issue's size (200 clients a wave for 20 slots), and again with
// every event dropped: reconciliation alone reaches the same end.
func TestDepositRace(t *testing.T) {
	for _, tc := range []struct {
		name           string
		slots, clients int
		dropAll        bool
	}{
		{"events-random", 20, 200, false},
		{"events-all-dropped", 20, 200, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			withDeposits(t, func(t *testing.T, f *depositFixture) { depositRace(t, f, tc.slots, tc.clients, tc.dropAll) })
		})
	}
}

func depositRace(t *testing.T, f *depositFixture, slots, clients int, dropAll bool) {
	starts := make([]time.Time, slots)
	for i := range starts {
		starts[i] = f.start.Add(time.Duration(i) * 30 * time.Minute)
	}
	rng := rand.New(rand.NewPCG(uint64(slots), uint64(clients)))
	var late []string // pending transactions, approved after the holds lapse
	var mu sync.Mutex
	wave := func(name string, n int, pick func(i int) wompifake.Outcome) {
		deliveries := make([]int, n) // 0 once, 1 dropped, 2 three times
		for i := range deliveries {
			deliveries[i] = rng.IntN(3)
			if dropAll {
				deliveries[i] = 1
			}
		}
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				by := servicetest.As(auth.RoleClient, fmt.Sprintf("%s-%d", name, i))
				ap, err := f.book.Hold(context.Background(), by, booking.HoldInput{ServiceID: "peel", StaffID: "sol", Start: starts[i%slots]})
				if err != nil {
					return // taken
				}
				co, _, err := f.payDeposit(by, ap.ID)
				if err != nil {
					t.Errorf("PayDeposit: %v", err)
					return
				}
				switch deliveries[i] {
				case 1:
					f.fake.Delivery(co.Intent.ID, wompifake.Delivery{Drop: true})
				case 2:
					f.fake.Delivery(co.Intent.ID, wompifake.Delivery{Duplicates: 2})
				}
				o := pick(i)
				if o == wompifake.Pending {
					f.fake.Outcome(co.Intent.ID, wompifake.Pending)
					o = wompifake.Sandbox
				}
				tx, err := f.fake.PayCheckout(co.URL, o)
				if err != nil {
					t.Errorf("PayCheckout: %v", err)
					return
				}
				if tx.Status == "PENDING" {
					mu.Lock()
					late = append(late, tx.ID)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		f.fake.WaitIdle()
	}
	wave("first", clients, func(i int) wompifake.Outcome {
		// By slot, so that whoever wins it: approved (on time, or late
		// when its events are dropped), declined, approved late twice.
		return []wompifake.Outcome{wompifake.Approve, wompifake.Decline, wompifake.Pending, wompifake.Pending}[(i%slots)%4]
	})
	if dropAll {
		// Nothing told the node: reconciliation finds the approvals (and
		// confirms them) and the declines (and frees their slots) before
		// the holds lapse.
		if _, err := f.svc.Reconcile(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	f.offset.Add(int64(11 * time.Minute))
	wave("second", clients, func(int) wompifake.Outcome { return wompifake.Approve })
	for _, id := range late {
		if err := f.fake.Settle(id, wompifake.Approve); err != nil {
			t.Fatal(err)
		}
	}
	f.fake.WaitIdle()
	if _, err := f.svc.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}

	var approved, attached, refunded int64
	for _, tx := range f.fake.Transactions() {
		if tx.Status == "APPROVED" || tx.Status == "VOIDED" {
			approved += tx.AmountInCents
		}
	}
	f.must(func(ctx context.Context, tx persistence.Tx) error {
		list, err := tx.AppointmentList(ctx, persistence.AppointmentRange{StaffID: "sol", From: f.start, To: f.start.Add(time.Duration(slots) * 30 * time.Minute)})
		if err != nil {
			return err
		}
		confirmed := map[time.Time]int{}
		for _, ap := range list {
			intents, err := tx.PaymentIntentsOf(ctx, persistence.PaymentDeposit, ap.ID)
			if err != nil {
				return err
			}
			paid := 0
			for _, in := range intents {
				entries, err := tx.PaymentLedgerEntries(ctx, in.ID)
				if err != nil {
					return err
				}
				for _, e := range entries {
					switch {
					case e.Key == "attached/"+in.ID && e.Account == persistence.AccountDeposits:
						attached -= e.AmountMinor
						paid++
					case (e.Key == "refunded/"+in.ID || e.Key == "voided/"+in.TransactionID) && e.Account == persistence.AccountDepositsHeld:
						refunded += e.AmountMinor
					}
				}
				if in.Status == persistence.IntentApproved && paid == 0 {
					t.Errorf("approved payment %s of %s appointment neither attached nor refunded", in.ID, ap.Status)
				}
			}
			if ap.Status == persistence.StatusConfirmed {
				confirmed[ap.Start]++
				if paid != 1 {
					t.Errorf("confirmed appointment %s has %d attached deposits", ap.ID, paid)
				}
			} else if paid != 0 {
				t.Errorf("%s appointment %s has an attached deposit", ap.Status, ap.ID)
			}
		}
		for start, n := range confirmed {
			if n > 1 {
				t.Errorf("%d confirmed appointments at %v", n, start)
			}
		}
		if len(confirmed) != slots {
			t.Errorf("%d of %d slots confirmed after the second wave: %v", len(confirmed), slots, confirmed)
		}
		return nil
	})
	if len(late) > 0 && refunded == 0 {
		t.Errorf("%d payments approved after their holds lapsed, none refunded", len(late))
	}
	if approved == 0 || approved != attached+refunded {
		t.Fatalf("approved %d, attached %d + refunded %d", approved, attached, refunded)
	}
	t.Logf("%d clients a wave for %d slots: approved %d = attached %d + refunded %d (COP cents); %d approved late", clients, slots, approved, attached, refunded, len(late))
}

// TestStaleDepositFollowUpIsFlagged: an approved deposit whose follow-up
// keeps failing (its calendar cannot be reached) is put before a human as
// stale_follow_up once, an hour after its approval, not before; once the
// calendar answers again, reconciliation settles it (the hold lapsed
// meanwhile: the payment is voided).
func TestStaleDepositFollowUpIsFlagged(t *testing.T) {
	withDeposits(t, func(t *testing.T, f *depositFixture) {
		ctx := context.Background()
		by := servicetest.As(auth.RoleClient, "carla")
		ap := f.hold(by)
		co := f.mustPayDeposit(by, ap.ID)
		f.apps.fail.Store(true)
		f.checkout(co, wompifake.Approve)
		stale := func() []persistence.PaymentException {
			var list []persistence.PaymentException
			f.must(func(ctx context.Context, tx persistence.Tx) (err error) {
				list, err = tx.PaymentExceptionList(ctx, persistence.ExceptionListParams{Class: persistence.ExceptionStaleFollowUp, Limit: 10})
				return err
			})
			return list
		}
		if _, err := f.svc.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		if got := f.intent(co.Intent.ID).Status; got != persistence.IntentApproved {
			t.Fatalf("intent %s, want approved", got)
		}
		if n := len(stale()); n != 0 {
			t.Fatalf("%d stale_follow_up exceptions minutes after the approval", n)
		}
		f.offset.Add(int64(StaleFollowUpAfter + time.Minute))
		for range 2 {
			if _, err := f.svc.Reconcile(ctx); err != nil {
				t.Fatal(err)
			}
		}
		list := stale()
		if len(list) != 1 || list[0].IntentID != co.Intent.ID || list[0].State != persistence.ExceptionOpen || list[0].AmountMinor != co.Intent.AmountMinor {
			t.Fatalf("stale_follow_up exceptions: %+v", list)
		}
		f.apps.fail.Store(false)
		if _, err := f.svc.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		if got := f.intent(co.Intent.ID).Status; got != persistence.IntentVoided {
			t.Fatalf("intent once the calendar answers: %s, want voided (its hold lapsed)", got)
		}
	})
}
