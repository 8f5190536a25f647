package booking

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors/keyed"
	"github.com/spa-engine/spa/actors/quota"
	"github.com/spa-engine/spa/actors/service/caps"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence"
)

// withHoldCaps gives f's service hold caps counted by real quota actors
// on f's store.
func (f *fixture) withHoldCaps(perClient, perIP int64) *prometheus.Registry {
	f.t.Helper()
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
	reg := prometheus.NewRegistry()
	met, err := quota.NewMetrics(reg)
	if err != nil {
		f.t.Fatal(err)
	}
	dir, err := quota.NewDirectory(sys.Root, quota.Deps{Store: f.store, Now: func() time.Time { return now }, Metrics: met, Log: quiet}, 10*time.Second)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { dir.Stop(5 * time.Second); sys.Shutdown() })
	g, err := caps.New(quota.NewClient(dir), reg, quiet)
	if err != nil {
		f.t.Fatal(err)
	}
	f.deps.Caps = HoldCaps{Guard: g, PerClient: perClient, PerIP: perIP, TTL: 10 * time.Minute}
	f.svc = New(f.deps)
	return reg
}

func wantHoldLimit(t *testing.T, err error, cap string) {
	t.Helper()
	var fe *fault.Error
	if !errors.As(err, &fe) || fe.Code != fault.CodeHoldLimit || fe.Status != 429 || fe.RetryAfter <= 0 ||
		fe.Details.(map[string]any)["cap"] != cap {
		t.Fatalf("want 429 hold_limit_reached by %s with a wait, got %#v", cap, err)
	}
}

// TestHoldCapsLimitLiveHoldsPerClientAndIP is issue 15 item 5 for holds:
// a client holds at most PerClient live holds and an IP at most PerIP,
// refused with 429 hold_limit_reached and a wait (a hold counted after
// the actor decided is cancelled again); a refused claim (slot_taken)
// does not count, keyed or not; a confirmed or cancelled hold gives its
// place back, and staff at the desk are not capped.
func TestHoldCapsLimitLiveHoldsPerClientAndIP(t *testing.T) {
	f := newFixture(t)
	reg := f.withHoldCaps(2, 3)
	ctx := context.Background()
	m, j := maria, juan
	m.IP, j.IP = "198.51.100.7", "198.51.100.7"

	first := f.hold(m, HoldInput{ServiceID: "facial", StaffID: "ana", Start: at(9, 0)})
	// A slot another client holds refuses without spending a place; the
	// holder claiming it again gets its hold back, without spending one
	// either.
	if _, err := f.svc.Hold(ctx, j, HoldInput{ServiceID: "facial", StaffID: "ana", Start: at(9, 0)}); !isCode(err, fault.CodeSlotTaken) {
		t.Fatalf("taken slot: %v", err)
	}
	if ap, err := f.svc.Hold(ctx, m, HoldInput{ServiceID: "facial", StaffID: "ana", Start: at(9, 0)}); err != nil || ap.ID != first.ID {
		t.Fatalf("the holder claims its slot again: %+v %v, want its hold %s", ap, err, first.ID)
	}
	second := f.hold(m, HoldInput{ServiceID: "facial", StaffID: "ana", Start: at(10, 0)})
	_, err := f.svc.Hold(ctx, m, HoldInput{ServiceID: "facial", StaffID: "ana", Start: at(11, 0)})
	wantHoldLimit(t, err, "holds_per_client")
	if got := f.appointments(persistence.AppointmentRange{StaffID: "ana"}); len(got) != 2 {
		t.Fatalf("the hold over the cap is still live: %d live", len(got))
	}

	// The IP: juan's first hold is its third; his second is over.
	f.hold(j, HoldInput{ServiceID: "facial", StaffID: "bea", Start: at(9, 0)})
	_, err = f.svc.Hold(ctx, j, HoldInput{ServiceID: "facial", StaffID: "bea", Start: at(10, 0)})
	wantHoldLimit(t, err, "holds_per_ip")

	// Confirming gives the hold's places back (client and IP).
	if _, err := f.svc.Confirm(ctx, m, f.load(m, first.ID), ChangeInput{}); err != nil {
		t.Fatal(err)
	}
	f.hold(m, HoldInput{ServiceID: "facial", StaffID: "ana", Start: at(11, 0)})

	// A keyed hold of a client this node found at its cap is refused
	// before the actor decides, with nothing held; a keyed claim the actor
	// refuses (slot_taken) asks no quota actor at all.
	key := func(name string) *keyed.Key { return &keyed.Key{Scope: "sub:maria", Name: name, Hash: []byte(name)} }
	_, err = f.svc.Hold(ctx, m, HoldInput{ID: "01KEYEDHOLD0000000000000001", ServiceID: "facial", StaffID: "ana", Start: at(12, 0), Key: key("k1")})
	wantHoldLimit(t, err, "holds_per_client")
	if got := f.appointments(persistence.AppointmentRange{StaffID: "ana"}); len(got) != 3 { // 9:00 confirmed, 10:00, 11:00
		t.Fatalf("a keyed hold over the cap was written: %d live", len(got))
	}
	if _, err := f.svc.Cancel(ctx, m, f.load(m, second.ID), ChangeInput{}); err != nil {
		t.Fatal(err)
	}
	asked := func() (n float64) {
		for _, outcome := range []string{"granted", "refused", "released", "unavailable"} {
			n += counterValue(t, reg, "spa_quota_decisions_total", outcome)
		}
		return n
	}
	before := asked()
	// 9:00 is booked (confirmed), not a hold maria could get back.
	if _, err := f.svc.Hold(ctx, m, HoldInput{ID: "01KEYEDHOLD0000000000000002", ServiceID: "facial", StaffID: "ana", Start: at(9, 0), Key: key("k2")}); !isCode(err, fault.CodeSlotTaken) {
		t.Fatalf("keyed claim of a taken slot: %v", err)
	}
	if after := asked(); after != before {
		t.Fatalf("a refused keyed claim asked the quota actors %v times", after-before)
	}
	if _, err := f.svc.Hold(ctx, m, HoldInput{ID: "01KEYEDHOLD0000000000000003", ServiceID: "facial", StaffID: "ana", Start: at(12, 0), Key: key("k3")}); err != nil {
		t.Fatalf("keyed hold within the cap: %v", err)
	}

	// Staff are not capped.
	for h := 12; h < 15; h++ {
		f.hold(desk, HoldInput{ServiceID: "facial", StaffID: "bea", Start: at(h, 0), ClientID: "maria"})
	}
	if got := counterValue(t, reg, "spa_hoarding_refused_total", "holds_per_client"); got != 2 {
		t.Fatalf("holds_per_client refusals %v", got)
	}
}

func isCode(err error, code string) bool {
	var fe *fault.Error
	return errors.As(err, &fe) && fe.Code == code
}

// counterValue reads the counter of name whose one label is label from reg.
func counterValue(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == label {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestDepositPaidOnlineFreesTheHoldCap: a hold confirmed by its deposit
// paid online (ConfirmPaid, the payments service's path) gives its place
// under the client's cap back, like a confirm at the desk.
func TestDepositPaidOnlineFreesTheHoldCap(t *testing.T) {
	f := newFixture(t)
	f.withHoldCaps(1, 0)
	ctx := context.Background()
	ap := f.hold(maria, HoldInput{ServiceID: "deposit", StaffID: "bea", Start: at(15, 0)})
	_, err := f.svc.Hold(ctx, maria, HoldInput{ServiceID: "facial", StaffID: "ana", Start: at(9, 0)})
	wantHoldLimit(t, err, "holds_per_client")
	if got, err := f.svc.ConfirmPaid(ctx, ap, "01PAYMENT000000000000000001"); err != nil || got.Status != persistence.StatusConfirmed {
		t.Fatalf("ConfirmPaid: %+v, %v", got, err)
	}
	f.hold(maria, HoldInput{ServiceID: "facial", StaffID: "ana", Start: at(9, 0)})
}
