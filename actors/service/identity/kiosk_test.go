package identity

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence"
)

func TestKioskTokens(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	for _, tc := range []struct {
		name string
		in   KioskIssueInput
	}{
		{"no label", KioskIssueInput{Label: "  "}},
		{"label too long", KioskIssueInput{Label: string(make([]byte, 65))}},
		{"ttl too short", KioskIssueInput{Label: "front desk", TTLSeconds: 10}},
		{"ttl too long", KioskIssueInput{Label: "front desk", TTLSeconds: 91 * 24 * 3600}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := f.svc.IssueKiosk(ctx, admin(), tc.in)
			wantCode(t, err, fault.CodeValidationFailed)
		})
	}
	k, tok, err := f.svc.IssueKiosk(ctx, admin(), KioskIssueInput{Label: " front desk "})
	if err != nil || !k.Active || k.Label != "front desk" || k.CreatedBy != "owner" || !k.ExpiresAt.Equal(f.clk.now().Add(DefaultKioskTTL)) {
		t.Fatalf("issue: %+v, %v", k, err)
	}
	cl, err := f.tokens.Verify(tok)
	if err != nil || cl.Role != auth.RoleKiosk || cl.Subject != k.ID || cl.SessionID != k.ID {
		t.Fatalf("kiosk token %+v, %v", cl, err)
	}
	kiosk := service.Caller{Claims: cl}
	if err := f.svc.KioskLive(ctx, kiosk); err != nil {
		t.Fatalf("live kiosk: %v", err)
	}
	short, shortTok, err := f.svc.IssueKiosk(ctx, admin(), KioskIssueInput{Label: "tablet", TTLSeconds: 300})
	if err != nil {
		t.Fatal(err)
	}
	if list, err := f.svc.Kiosks(ctx, admin(), false); err != nil || len(list) != 2 {
		t.Fatalf("list %+v, %v", list, err)
	}

	revoke := func(id string) error {
		return f.store.InTx(ctx, func(tx persistence.Tx) error { return f.svc.RevokeKiosk(ctx, tx, admin(), id) })
	}
	if err := revoke(k.ID); err != nil {
		t.Fatal(err)
	}
	wantCode(t, f.svc.KioskLive(ctx, kiosk), fault.CodeUnauthenticated)
	wantCode(t, revoke("nope"), fault.CodeNotFound)
	if err := revoke(k.ID); err != nil { // again: nothing to audit
		t.Fatal(err)
	}
	// Expiry: the five-minute kiosk stops once its time is up.
	shortCl, _ := f.tokens.Verify(shortTok)
	f.clk.add(5 * time.Minute)
	wantCode(t, f.svc.KioskLive(ctx, service.Caller{Claims: shortCl}), fault.CodeUnauthenticated)
	if list, _ := f.svc.Kiosks(ctx, admin(), false); len(list) != 0 {
		t.Fatalf("live list %+v", list)
	}
	all, _ := f.svc.Kiosks(ctx, admin(), true)
	if len(all) != 2 || all[0].Active || all[1].Active {
		t.Fatalf("all %+v", all)
	}
	if e := f.audit("kiosk/" + k.ID); len(e) != 2 || e[0].Action != "kiosk.revoke" || e[1].Action != "kiosk.issue" {
		t.Fatalf("audit %+v", e)
	}
	if e := f.audit("kiosk/" + short.ID); len(e) != 1 {
		t.Fatalf("audit %+v", e)
	}
}

// checkIns is the fake calendar door of the kiosk tests: it checks in what
// it is asked, or refuses what refuse names.
type checkIns struct {
	mu     sync.Mutex
	asked  []string
	refuse map[string]error
	down   bool
}

func (c *checkIns) checkIn(_ context.Context, ap persistence.Appointment, actorID string) (persistence.Appointment, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.asked = append(c.asked, ap.ID+" by "+actorID)
	if c.down {
		return ap, fault.Unavailable("the calendar did not answer in time; retry")
	}
	if err := c.refuse[ap.ID]; err != nil {
		return ap, &Refused{Err: err}
	}
	ap.CheckedInAt = time.Now()
	return ap, nil
}

func TestKioskCheckIn(t *testing.T) {
	cal := &checkIns{refuse: map[string]error{}}
	f := newFixture(t, func(d *Deps) { d.CheckIn = cal.checkIn })
	ctx := t.Context()
	client := f.signIn(maria)
	// 15:00 UTC is 10:00 in Bogota: one confirmed appointment this
	// afternoon, one cancelled, one tomorrow.
	appt := func(start time.Time, st persistence.AppointmentStatus) string {
		id := ulid.Make().String()
		f.tx(func(ctx context.Context, tx persistence.Tx) error {
			return tx.AppointmentInsert(ctx, persistence.Appointment{ID: id, StaffID: "ana", ServiceID: "facial", ClientID: client.UserID,
				Start: start, End: start.Add(time.Hour), Status: st, CreatedAt: f.clk.now(), UpdatedAt: f.clk.now()})
		})
		return id
	}
	today := appt(f.clk.now().Add(2*time.Hour), persistence.StatusConfirmed)
	appt(f.clk.now().Add(3*time.Hour), persistence.StatusCancelled)
	appt(f.clk.now().Add(24*time.Hour), persistence.StatusConfirmed)
	_, tok, _ := f.svc.IssueKiosk(ctx, admin(), KioskIssueInput{Label: "front desk"})
	cl, _ := f.tokens.Verify(tok)
	kiosk := service.Caller{Claims: cl, IP: "198.51.100.4"}

	code := func(phone string) string {
		f.t.Helper()
		f.clk.add(time.Minute)
		if _, err := f.svc.KioskRequestCode(ctx, kiosk, phone); err != nil {
			t.Fatalf("kiosk code: %v", err)
		}
		return f.sink.code(phone)
	}
	c := code(maria)
	_, err := f.svc.KioskCheckIn(ctx, kiosk, KioskCheckInInput{Phone: maria, Code: "12"})
	wantCode(t, err, fault.CodeValidationFailed)
	wrong := "000000"
	if c == wrong {
		wrong = "111111"
	}
	_, err = f.svc.KioskCheckIn(ctx, kiosk, KioskCheckInInput{Phone: maria, Code: wrong})
	wantCode(t, err, fault.CodeInvalidCode)
	done, err := f.svc.KioskCheckIn(ctx, kiosk, KioskCheckInInput{Phone: maria, Code: c})
	if err != nil || len(done) != 1 || done[0].ID != today {
		t.Fatalf("check in: %+v, %v", done, err)
	}
	if len(cal.asked) != 1 || cal.asked[0] != today+" by kiosk/"+cl.Subject {
		t.Fatalf("calendar asked %v", cal.asked)
	}
	// Outside its window: the calendar's refusal is the answer.
	cal.refuse[today] = fault.New(fault.CodeInvalidTransition, "")
	_, err = f.svc.KioskCheckIn(ctx, kiosk, KioskCheckInInput{Phone: maria, Code: code(maria)})
	wantCode(t, err, fault.CodeInvalidTransition)
	// A calendar that cannot be asked fails the request.
	cal.refuse[today] = nil
	cal.down = true
	_, err = f.svc.KioskCheckIn(ctx, kiosk, KioskCheckInInput{Phone: maria, Code: code(maria)})
	wantCode(t, err, fault.CodeUnavailable)
	// A number with no user has no appointment; said only after the code.
	_, err = f.svc.KioskCheckIn(ctx, kiosk, KioskCheckInInput{Phone: juan, Code: code(juan)})
	wantCode(t, err, fault.CodeNotFound)
	f.svc.KioskCheckInFailed(errors.New("unreadable body"))

	for outcome, want := range map[string]float64{"checked_in": 1, "invalid_code": 1, "refused": 1, "no_appointment": 1, "error": 3} {
		if got := testutil.ToFloat64(f.svc.checkIns.WithLabelValues(outcome)); got != want {
			t.Errorf("check-ins %s = %v, want %v", outcome, got, want)
		}
	}
	if got := testutil.ToFloat64(f.svc.kioskCodes.WithLabelValues("sent")); got != 4 {
		t.Errorf("codes sent %v", got)
	}

	// Without a calendar door the node cannot check anyone in.
	bare := newFixture(t)
	wantCode(t, bare.svc.KioskCheckInReady(), fault.CodeUnavailable)
}

// TestKioskStudioDay: "today" is the studio's day. At 23:30 in Bogota it
// is already tomorrow in UTC; the client's appointment of the Bogota day
// is found and one of the UTC day is not.
func TestKioskStudioDay(t *testing.T) {
	for _, tc := range []struct {
		zone string
		now  time.Time
		want [2]time.Time
	}{
		{"America/Bogota", time.Date(2026, 12, 2, 4, 30, 0, 0, time.UTC),
			[2]time.Time{time.Date(2026, 12, 1, 5, 0, 0, 0, time.UTC), time.Date(2026, 12, 2, 5, 0, 0, 0, time.UTC)}},
		// A DST day in New York is 23 hours long.
		{"America/New_York", time.Date(2026, 3, 8, 15, 0, 0, 0, time.UTC),
			[2]time.Time{time.Date(2026, 3, 8, 5, 0, 0, 0, time.UTC), time.Date(2026, 3, 9, 4, 0, 0, 0, time.UTC)}},
	} {
		t.Run(tc.zone, func(t *testing.T) {
			f := newFixture(t)
			if tc.zone != DefaultTimeZone {
				f.tx(func(ctx context.Context, tx persistence.Tx) error {
					_, err := tx.StudioPut(ctx, persistence.Studio{ID: studioID, Name: "Spa", TimeZone: tc.zone, Currency: "COP"})
					return err
				})
			}
			var from, to time.Time
			f.tx(func(ctx context.Context, tx persistence.Tx) (err error) {
				from, to, err = studioDay(ctx, tx, tc.now)
				return err
			})
			if !from.Equal(tc.want[0]) || !to.Equal(tc.want[1]) {
				t.Fatalf("day [%v, %v), want [%v, %v)", from, to, tc.want[0], tc.want[1])
			}
		})
	}
}
