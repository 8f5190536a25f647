package gateway

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/schedule"
	"github.com/spa-engine/spa/actors/schedule/claimcheck"
)

var bogota, _ = time.LoadLocation("America/Bogota")

// bookingNow is a Tuesday, 07:00 in Bogota; staff work 08:00-18:00.
var bookingNow = time.Date(2026, 12, 1, 7, 0, 0, 0, bogota)

func slotAt(h, m int) time.Time { return time.Date(2026, 12, 1, h, m, 0, 0, bogota) }

// newBookingEnv is a gateway with real schedule actors over its store, a
// fixed clock, and a catalogue: a 30-minute facial any of two therapists
// can give.
func newBookingEnv(t *testing.T) *env { return newBookingEnvTB(t) }

func newBookingEnvTB(t testing.TB, opts ...envOpt) *env {
	t.Helper()
	now := func() time.Time { return bookingNow }
	e := newEnv(t, func(d *Deps) {
		system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
			return slog.New(slog.NewTextHandler(io.Discard, nil))
		}))
		m, err := schedule.NewMetrics(prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		dir, err := schedule.NewDirectory(system.Root, schedule.Deps{Store: d.Store, Now: now, Metrics: m, Config: schedule.Config{Step: 30 * time.Minute},
			Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { dir.Stop(5 * time.Second); system.Shutdown() })
		d.Calendars, d.Now = schedule.NewClient(dir), now
		for _, o := range opts {
			o(d)
		}
	})
	hours := `{"start":"08:00","end":"18:00"}`
	week := fmt.Sprintf(`{"sunday":[%[1]s],"monday":[%[1]s],"tuesday":[%[1]s],"wednesday":[%[1]s],"thursday":[%[1]s],"friday":[%[1]s],"saturday":[%[1]s]}`, hours)
	for _, id := range []string{"ana", "bea"} {
		if r := e.admin("PUT", "/v1/admin/staff/"+id, `{"name":"`+id+`","skills":["facial"],"time_zone":"America/Bogota","active":true,"version":0,"weekly_hours":`+week+`}`); r.status != 200 {
			t.Fatalf("staff %s: %d %s", id, r.status, r.body)
		}
	}
	if r := e.admin("PUT", "/v1/admin/staff/carl", `{"name":"Carl","skills":["massage"],"time_zone":"America/Bogota","active":true,"version":0,"weekly_hours":`+week+`}`); r.status != 200 {
		t.Fatal(r.status)
	}
	if r := e.admin("PUT", "/v1/admin/services/facial", `{"name":"Facial","category":"face","duration_minutes":30,"price_minor":8000000,
		"required_skills":["facial"],"cancel_cutoff_minutes":120,"active":true,"version":0}`); r.status != 200 {
		t.Fatalf("service: %d %s", r.status, r.body)
	}
	return e
}

func (e *env) book(token, staff string, start time.Time, hdr ...string) result {
	e.t.Helper()
	body := fmt.Sprintf(`{"service_id":"facial","staff_id":%q,"start":%q}`, staff, start.Format(time.RFC3339))
	h := append([]string{"Authorization", "Bearer " + token, "Content-Type", "application/json"}, hdr...)
	return e.do("POST", "/v1/appointments", body, h...)
}

func (e *env) as(token, method, path string) result {
	e.t.Helper()
	return e.do(method, path, "", "Authorization", "Bearer "+token)
}

func availabilityURL(staff string, from, to time.Time) string {
	q := url.Values{"service": {"facial"}, "from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}}
	if staff != "" {
		q.Set("staff", staff)
	}
	return "/v1/availability?" + q.Encode()
}

func TestBookingLifecycle(t *testing.T) {
	e := newBookingEnv(t)
	maria, juan := e.token("maria", auth.RoleClient), e.token("juan", auth.RoleClient)

	// Catalogue → availability: 20 half-hour slots for ana between 08:00 and 18:00.
	slots := decode[struct{ Slots []slotJSON }](t, e.do("GET", availabilityURL("ana", slotAt(0, 0), slotAt(23, 0)), ""))
	if len(slots.Slots) != 20 || !slots.Slots[0].Start.Equal(slotAt(8, 0)) {
		t.Fatalf("availability: %d slots, first %v", len(slots.Slots), slots.Slots)
	}
	// Hold.
	r := e.book(maria, "ana", slotAt(10, 0))
	if r.status != 201 {
		t.Fatalf("hold: %d %s", r.status, r.body)
	}
	ap := decode[appointmentJSON](t, r)
	if ap.Status != "held" || ap.ClientID != "maria" || ap.HoldExpiresAt == nil {
		t.Fatalf("held appointment %+v", ap)
	}
	// The same slot for someone else: 409 slot_taken with alternatives.
	r = e.book(juan, "ana", slotAt(10, 0))
	if r.status != 409 || r.errCode(t) != "slot_taken" {
		t.Fatalf("taken slot: %d %s", r.status, r.body)
	}
	alts := decode[struct {
		Error struct {
			Details struct{ Alternatives []slotJSON } `json:"details"`
		} `json:"error"`
	}](t, r).Error.Details.Alternatives
	if len(alts) == 0 || len(alts) > 5 {
		t.Fatalf("alternatives %v", alts)
	}
	var otherStaff bool
	for _, a := range alts {
		otherStaff = otherStaff || (a.StaffID == "bea" && a.Start.Equal(slotAt(10, 0)))
	}
	if !otherStaff {
		t.Fatalf("alternatives lack bea at the same time: %v", alts)
	}
	// Someone else's appointment is invisible; the owner sees it.
	if r := e.as(juan, "GET", "/v1/appointments/"+ap.ID); r.status != 404 {
		t.Fatalf("other client reads it: %d", r.status)
	}
	// Confirm (no deposit due), then list mine.
	if r := e.as(maria, "POST", "/v1/appointments/"+ap.ID+"/confirm"); r.status != 200 || decode[appointmentJSON](t, r).Status != "confirmed" {
		t.Fatalf("confirm: %d %s", r.status, r.body)
	}
	mine := decode[struct{ Appointments []appointmentJSON }](t, e.as(maria, "GET", "/v1/me/appointments?from=2026-12-01T00:00:00Z&to=2026-12-03T00:00:00Z"))
	if len(mine.Appointments) != 1 || mine.Appointments[0].Status != "confirmed" {
		t.Fatalf("my appointments %+v", mine)
	}
	// Agenda for the front desk.
	desk := e.token("desk", auth.RoleReceptionist)
	agenda := decode[struct{ Appointments []appointmentJSON }](t, e.as(desk, "GET", "/v1/agenda?staff=ana&date=2026-12-01"))
	if len(agenda.Appointments) != 1 {
		t.Fatalf("agenda %+v", agenda)
	}
	if r := e.as(maria, "GET", "/v1/agenda?staff=ana&date=2026-12-01"); r.status != 403 {
		t.Fatalf("client reads the agenda: %d", r.status)
	}
	// Cancel frees the slot at once.
	if r := e.as(maria, "POST", "/v1/appointments/"+ap.ID+"/cancel"); r.status != 200 || decode[appointmentJSON](t, r).Status != "cancelled" {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
	if r := e.book(juan, "ana", slotAt(10, 0)); r.status != 201 {
		t.Fatalf("freed slot: %d %s", r.status, r.body)
	}
	// A cancelled appointment cannot be confirmed.
	if r := e.as(maria, "POST", "/v1/appointments/"+ap.ID+"/confirm"); r.status != 409 || r.errCode(t) != "invalid_transition" {
		t.Fatalf("confirm after cancel: %d %s", r.status, r.body)
	}
}

func TestBookingIdempotentHold(t *testing.T) {
	e := newBookingEnv(t)
	maria := e.token("maria", auth.RoleClient)
	first := e.book(maria, "ana", slotAt(9, 0), "Idempotency-Key", "tap-1")
	again := e.book(maria, "ana", slotAt(9, 0), "Idempotency-Key", "tap-1")
	if first.status != 201 || again.status != 201 || string(first.body) != string(again.body) || again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d %s / %d %s", first.status, first.body, again.status, again.body)
	}
	if r := e.book(maria, "ana", slotAt(11, 0), "Idempotency-Key", "tap-1"); r.status != 422 || r.errCode(t) != "idempotency_key_reused" {
		t.Fatalf("key reuse: %d %s", r.status, r.body)
	}
}

func TestBookingAnyStaffIsFair(t *testing.T) {
	e := newBookingEnv(t)
	tok := func(i int) string { return e.token(fmt.Sprint("client", i), auth.RoleClient) }
	// Ana already has a booking in the afternoon, so the next "any staff"
	// booking goes to the less loaded Bea.
	if r := e.book(tok(0), "ana", slotAt(15, 0)); r.status != 201 {
		t.Fatal(r.status)
	}
	r := e.book(tok(1), "", slotAt(9, 0))
	if r.status != 201 || decode[appointmentJSON](t, r).StaffID != "bea" {
		t.Fatalf("any staff → %d %s, want bea", r.status, r.body)
	}
	if r := e.book(tok(2), "", slotAt(9, 0)); r.status != 201 || decode[appointmentJSON](t, r).StaffID != "ana" {
		t.Fatalf("second any-staff booking: %d %s", r.status, r.body)
	}
	// Carl lacks the skill: nobody is left at 09:00.
	if r := e.book(tok(3), "", slotAt(9, 0)); r.status != 409 || r.errCode(t) != "slot_taken" {
		t.Fatalf("third: %d %s", r.status, r.body)
	}
	if r := e.book(tok(4), "carl", slotAt(12, 0)); r.status != 422 {
		t.Fatalf("unskilled staff: %d %s", r.status, r.body)
	}
	// Any-staff availability at 09:00 is gone, at 09:30 it remains.
	slots := decode[struct{ Slots []slotJSON }](t, e.do("GET", availabilityURL("", slotAt(9, 0), slotAt(10, 0)), ""))
	if len(slots.Slots) != 1 || !slots.Slots[0].Start.Equal(slotAt(9, 30)) {
		t.Fatalf("any-staff availability %+v", slots)
	}
}

// TestBookingRaceIsLinearizable: 500 clients race through HTTP for the 20
// slots of one staff member. Exactly 20 win, the 480 others get slot_taken
// and nothing else, and the recorded history is linearizable: a claim won
// only a free slot and was refused only a held one.
func TestBookingRaceIsLinearizable(t *testing.T) {
	e := newBookingEnv(t)
	const clients = 500
	var slots []time.Time
	for m := 8 * 60; m < 18*60; m += 30 {
		slots = append(slots, slotAt(m/60, m%60))
	}
	tokens := make([]string, clients)
	for i := range tokens {
		tokens[i] = e.token(fmt.Sprint("c", i), auth.RoleClient)
	}
	rec := claimcheck.NewRecorder()
	var won, refused atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range clients {
		wg.Go(func() {
			<-start
			slot := slots[(i*7)%len(slots)]
			rec.Claim(i, slot.Format(time.RFC3339), func() claimcheck.Outcome {
				r := e.book(tokens[i], "ana", slot)
				switch {
				case r.status == 201:
					won.Add(1)
					return claimcheck.Won
				case r.status == 409 && r.errCode(t) == "slot_taken":
					refused.Add(1)
					return claimcheck.Refused
				default:
					t.Errorf("client %d: %d %s", i, r.status, r.body)
					return claimcheck.Ambiguous
				}
			})
		})
	}
	close(start)
	wg.Wait()
	if won.Load() != int32(len(slots)) || refused.Load() != clients-int32(len(slots)) {
		t.Fatalf("won %d refused %d, want %d and %d", won.Load(), refused.Load(), len(slots), clients-len(slots))
	}
	if err := rec.Check(time.Minute); err != nil {
		t.Fatal(err)
	}
	left := decode[struct{ Slots []slotJSON }](t, e.do("GET", availabilityURL("ana", slotAt(0, 0), slotAt(23, 0)), ""))
	if len(left.Slots) != 0 {
		t.Fatalf("%d slots still offered after all were taken", len(left.Slots))
	}
}

func TestCheckIn(t *testing.T) {
	e := newBookingEnv(t) // now is 07:00
	maria, desk := e.token("maria", auth.RoleClient), e.token("desk", auth.RoleReceptionist)
	early := decode[appointmentJSON](t, e.book(maria, "ana", slotAt(8, 0)))
	later := decode[appointmentJSON](t, e.book(maria, "ana", slotAt(9, 0)))
	for _, id := range []string{early.ID, later.ID} {
		if r := e.post(maria, "/v1/appointments/"+id+"/confirm", ""); r.status != 200 {
			t.Fatalf("confirm: %d %s", r.status, r.body)
		}
	}
	if r := e.post(maria, "/v1/appointments/"+early.ID+"/check-in", ""); r.status != 403 {
		t.Fatalf("client checks in: %d", r.status)
	}
	r := e.post(desk, "/v1/appointments/"+early.ID+"/check-in", "")
	if r.status != 200 || decode[appointmentJSON](t, r).CheckedInAt == nil {
		t.Fatalf("check in an hour before: %d %s", r.status, r.body)
	}
	if again := e.post(desk, "/v1/appointments/"+early.ID+"/check-in", ""); again.status != 200 || string(again.body) != string(r.body) {
		t.Fatalf("check in twice: %d %s", again.status, again.body)
	}
	if r := e.post(desk, "/v1/appointments/"+later.ID+"/check-in", ""); r.status != 409 || r.errCode(t) != "invalid_transition" {
		t.Fatalf("check in two hours early: %d %s", r.status, r.body)
	}
	agenda := decode[struct{ Appointments []appointmentJSON }](t, e.as(desk, "GET", "/v1/agenda?staff=ana&date=2026-12-01"))
	if len(agenda.Appointments) != 2 || agenda.Appointments[0].CheckedInAt == nil || agenda.Appointments[1].CheckedInAt != nil {
		t.Fatalf("agenda %+v", agenda)
	}
}

// TestBookingBurstHolderWinsItsOwnSlot: 500 clients each claim three
// random slots of one staff member at once (1,500 claims, each under an
// Idempotency-Key of its own), on the embedded SQLite. No claim is a 500:
// each is 201 (held), 200 (the client's own hold of that slot, which it
// holds already: the holder wins its own slot), 409 slot_taken (another
// client holds it) or 503 with Retry-After, retried under the same key.
// The history is linearizable with "the holder wins its own slot", and
// every slot ends up with one holder.
func TestBookingBurstHolderWinsItsOwnSlot(t *testing.T) {
	e := newBookingEnv(t)
	const clients, claimsEach = 500, 3
	var slots []time.Time
	for m := 8 * 60; m < 18*60; m += 30 {
		slots = append(slots, slotAt(m/60, m%60))
	}
	tokens := make([]string, clients)
	for i := range tokens {
		tokens[i] = e.token(fmt.Sprint("c", i), auth.RoleClient)
	}
	rng := rand.New(rand.NewPCG(20, 4))
	picks := make([][claimsEach]int, clients)
	for i := range picks {
		for j := range claimsEach {
			picks[i][j] = rng.IntN(len(slots))
		}
	}
	rec := claimcheck.NewHolderRecorder()
	var mu sync.Mutex
	holders := map[string]map[string]bool{} // slot -> appointment ids won
	var again atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range clients {
		for j := range claimsEach {
			wg.Go(func() {
				<-start
				slot := slots[picks[i][j]]
				key := fmt.Sprintf("burst-%d-%d", i, j)
				rec.Claim(i, slot.Format(time.RFC3339), func() claimcheck.Outcome {
					for try := 0; ; try++ {
						r := e.book(tokens[i], "ana", slot, "Idempotency-Key", key)
						switch {
						case r.status == 201 || r.status == 200:
							ap := decode[appointmentJSON](t, r)
							if ap.ClientID != fmt.Sprint("c", i) {
								t.Errorf("client %d got %d with another client's appointment: %s", i, r.status, r.body)
							}
							if r.status == 200 {
								again.Add(1)
							}
							mu.Lock()
							if holders[ap.Start.UTC().Format(time.RFC3339)] == nil {
								holders[ap.Start.UTC().Format(time.RFC3339)] = map[string]bool{}
							}
							holders[ap.Start.UTC().Format(time.RFC3339)][ap.ID] = true
							mu.Unlock()
							return claimcheck.Won
						case r.status == 409 && r.errCode(t) == "slot_taken":
							return claimcheck.Refused
						case r.status == 503 && r.errCode(t) == "unavailable" && r.header.Get("Retry-After") != "" && try < 20:
							time.Sleep(10 * time.Millisecond) // retry under the same key, as the client is told
						default:
							t.Errorf("client %d claim %d: %d %s", i, j, r.status, r.body)
							return claimcheck.Ambiguous
						}
					}
				})
			})
		}
	}
	close(start)
	wg.Wait()
	if err := rec.Check(time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, s := range slots {
		if n := len(holders[s.UTC().Format(time.RFC3339)]); n != 1 {
			t.Errorf("slot %s: %d appointments held, want 1", s.Format(time.RFC3339), n)
		}
	}
	t.Logf("%d claims got their client's own hold back (200)", again.Load())

	// Every holder re-claiming its slot under a new key (another device)
	// gets the same hold back, 200; another client is still refused.
	for _, s := range slots {
		var id string
		for held := range holders[s.UTC().Format(time.RFC3339)] {
			id = held
		}
		r := e.book(tokens[0], "ana", s, "Idempotency-Key", "probe-"+s.Format("1504"))
		ap := decode[appointmentJSON](t, r)
		holder := ap.ClientID
		switch {
		case r.status == 200 && ap.ID == id && holder == "c0":
			continue // c0 holds it
		case r.status != 409:
			t.Fatalf("c0 claims %s held by another: %d %s", s, r.status, r.body)
		}
		var owner int
		if _, err := fmt.Sscanf(holderOf(t, e, id), "c%d", &owner); err != nil {
			t.Fatal(err)
		}
		r = e.book(tokens[owner], "ana", s, "Idempotency-Key", "second-device-"+s.Format("1504"))
		if got := decode[appointmentJSON](t, r); r.status != 200 || got.ID != id {
			t.Fatalf("holder c%d re-claims %s: %d %s, want 200 with %s", owner, s, r.status, r.body, id)
		}
	}
}

// holderOf is the client of appointment id (read as an admin).
func holderOf(t *testing.T, e *env, id string) string {
	t.Helper()
	r := e.as(e.token("root", auth.RoleAdmin), "GET", "/v1/appointments/"+id)
	if r.status != 200 {
		t.Fatalf("get %s: %d %s", id, r.status, r.body)
	}
	return decode[appointmentJSON](t, r).ClientID
}
