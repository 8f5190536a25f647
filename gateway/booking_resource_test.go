package gateway

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/resource"
	"github.com/spa-engine/spa/actors/schedule"
	"github.com/spa-engine/spa/persistence"
)

// newResourceEnv is a gateway with real schedule and resource actors, a
// fixed clock (bookingNow), staff s0..s{staff-1} who give "wet" services
// 08:00-18:00, a room for one with a 45-minute treatment (15-minute
// cleanup) and a sauna of the given capacity with a 60-minute session.
func newResourceEnv(t *testing.T, staff, saunaCapacity int) *env {
	t.Helper()
	now := func() time.Time { return bookingNow }
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	e := newEnv(t, func(d *Deps) {
		system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
		sm, err := schedule.NewMetrics(prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		sched, err := schedule.NewDirectory(system.Root, schedule.Deps{Store: d.Store, Now: now, Metrics: sm,
			Config: schedule.Config{Step: 30 * time.Minute}, Log: quiet}, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		rm, err := resource.NewMetrics(prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		res, err := resource.NewDirectory(system.Root, resource.Deps{Store: d.Store, Now: now, Metrics: rm, Log: quiet}, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sched.Stop(5 * time.Second); res.Stop(5 * time.Second); system.Shutdown() })
		d.Calendars, d.Resources, d.Now = schedule.NewClient(sched), resource.NewClient(res), now
	})
	hours := `{"start":"08:00","end":"18:00"}`
	week := fmt.Sprintf(`{"sunday":[%[1]s],"monday":[%[1]s],"tuesday":[%[1]s],"wednesday":[%[1]s],"thursday":[%[1]s],"friday":[%[1]s],"saturday":[%[1]s]}`, hours)
	for i := range staff {
		if r := e.admin("PUT", fmt.Sprintf("/v1/admin/staff/s%d", i), `{"name":"S","skills":["wet"],"time_zone":"America/Bogota","active":true,"version":0,"weekly_hours":`+week+`}`); r.status != 200 {
			t.Fatalf("staff: %d %s", r.status, r.body)
		}
	}
	for id, capacity := range map[string]int{"room": 1, "sauna": saunaCapacity} {
		if r := e.admin("PUT", "/v1/admin/resources/"+id, fmt.Sprintf(`{"name":%q,"capacity":%d,"active":true,"version":0}`, id, capacity)); r.status != 200 {
			t.Fatalf("resource %s: %d %s", id, r.status, r.body)
		}
	}
	for id, body := range map[string]string{
		"room-treatment": `{"name":"Treatment","category":"body","duration_minutes":45,"buffer_after_minutes":15,"price_minor":9000000,"required_skills":["wet"],"resource_id":"room","cancel_cutoff_minutes":60,"active":true,"version":0}`,
		"sauna-session":  `{"name":"Sauna","category":"wet","duration_minutes":60,"price_minor":5000000,"required_skills":["wet"],"resource_id":"sauna","cancel_cutoff_minutes":60,"active":true,"version":0}`,
	} {
		if r := e.admin("PUT", "/v1/admin/services/"+id, body); r.status != 200 {
			t.Fatalf("service %s: %d %s", id, r.status, r.body)
		}
	}
	return e
}

func (e *env) bookService(token, service, staff string, start time.Time) result {
	e.t.Helper()
	body := fmt.Sprintf(`{"service_id":%q,"staff_id":%q,"start":%q}`, service, staff, start.Format(time.RFC3339))
	return e.do("POST", "/v1/appointments", body, "Authorization", "Bearer "+token, "Content-Type", "application/json")
}

func (e *env) starts(t *testing.T, service, staff string) []time.Time {
	t.Helper()
	q := url.Values{"service": {service}, "from": {slotAt(0, 0).Format(time.RFC3339)}, "to": {slotAt(23, 0).Format(time.RFC3339)}}
	if staff != "" {
		q.Set("staff", staff)
	}
	r := e.do("GET", "/v1/availability?"+q.Encode(), "")
	if r.status != 200 {
		t.Fatalf("availability: %d %s", r.status, r.body)
	}
	var out []time.Time
	for _, s := range decode[struct{ Slots []slotJSON }](t, r).Slots {
		out = append(out, s.Start)
	}
	return out
}

func containsTime(ts []time.Time, t time.Time) bool {
	return slices.ContainsFunc(ts, func(x time.Time) bool { return x.Equal(t) })
}

// raceBook sends the bookings at once and returns the 201 results; any
// status other than 201 or 409 slot_taken fails the test.
func raceBook(t *testing.T, e *env, book []func() result) []appointmentJSON {
	t.Helper()
	var mu sync.Mutex
	var won []appointmentJSON
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, b := range book {
		wg.Go(func() {
			<-start
			r := b()
			switch {
			case r.status == 201:
				mu.Lock()
				won = append(won, decode[appointmentJSON](t, r))
				mu.Unlock()
			case r.status == 409 && r.errCode(t) == "slot_taken":
			default:
				t.Errorf("%d %s", r.status, r.body)
			}
		})
	}
	close(start)
	wg.Wait()
	return won
}

// Two clients book different therapists at the same time for a treatment
// that needs the one room: one gets it, the other slot_taken; the room is
// no longer offered; cancelling frees it at once.
func TestRoomForOneAcrossStaff(t *testing.T) {
	e := newResourceEnv(t, 2, 2)
	maria, juan := e.token("maria", auth.RoleClient), e.token("juan", auth.RoleClient)
	if got := e.starts(t, "room-treatment", "s1"); !containsTime(got, slotAt(10, 0)) {
		t.Fatalf("10:00 not offered before booking: %v", got)
	}
	won := raceBook(t, e, []func() result{
		func() result { return e.bookService(maria, "room-treatment", "s0", slotAt(10, 0)) },
		func() result { return e.bookService(juan, "room-treatment", "s1", slotAt(10, 0)) },
	})
	if len(won) != 1 {
		t.Fatalf("%d bookings of one room at once", len(won))
	}
	winner, loser, loserStaff := maria, juan, "s1"
	if won[0].ClientID == "juan" {
		winner, loser, loserStaff = juan, maria, "s0"
	}
	winnerStaff := won[0].StaffID
	// 10:00-10:45 plus 15 minutes of cleanup: 09:30 (09:30-10:30+) and
	// 10:30 overlap the room; 11:00 is free again. The other therapist is
	// free, but the room is not.
	got := e.starts(t, "room-treatment", loserStaff)
	for _, busy := range []time.Time{slotAt(9, 30), slotAt(10, 0), slotAt(10, 30)} {
		if containsTime(got, busy) {
			t.Fatalf("%v offered while the room is taken: %v", busy, got)
		}
	}
	if !containsTime(got, slotAt(11, 0)) || !containsTime(got, slotAt(9, 0)) {
		t.Fatalf("free room times not offered: %v", got)
	}
	r := e.bookService(loser, "room-treatment", loserStaff, slotAt(10, 30))
	if r.status != 409 || r.errCode(t) != "slot_taken" {
		t.Fatalf("overlapping the cleanup: %d %s", r.status, r.body)
	}
	// The sauna is another resource: not affected.
	if r := e.bookService(loser, "sauna-session", loserStaff, slotAt(10, 0)); r.status != 201 {
		t.Fatalf("sauna: %d %s", r.status, r.body)
	}
	// Cancelling frees the room at once, for the other therapist too.
	if r := e.as(winner, "POST", "/v1/appointments/"+won[0].ID+"/cancel"); r.status != 200 {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
	if got := e.starts(t, "room-treatment", winnerStaff); !containsTime(got, slotAt(10, 0)) {
		t.Fatalf("room not offered after cancellation: %v", got)
	}
	if r := e.bookService(loser, "room-treatment", winnerStaff, slotAt(10, 0)); r.status != 201 {
		t.Fatalf("book after cancel: %d %s", r.status, r.body)
	}
}

// Three therapists, a sauna for two, the same hour: exactly two bookings.
func TestSaunaForTwoThreeStaff(t *testing.T) {
	e := newResourceEnv(t, 3, 2)
	var book []func() result
	for i := range 3 {
		tok := e.token(fmt.Sprint("c", i), auth.RoleClient)
		book = append(book, func() result { return e.bookService(tok, "sauna-session", fmt.Sprint("s", i), slotAt(14, 0)) })
	}
	won := raceBook(t, e, book)
	if len(won) != 2 {
		t.Fatalf("%d sauna bookings for two places", len(won))
	}
	// Any staff: the third therapist is free, the sauna is not.
	if got := e.starts(t, "sauna-session", ""); containsTime(got, slotAt(14, 0)) || containsTime(got, slotAt(13, 30)) {
		t.Fatalf("full sauna offered: %v", got)
	}
	r := e.bookService(e.token("late", auth.RoleClient), "sauna-session", "", slotAt(14, 0))
	if r.status != 409 || r.errCode(t) != "slot_taken" {
		t.Fatalf("any staff into a full sauna: %d %s", r.status, r.body)
	}
	// Moving one booking out of the hour makes room for another.
	if r := e.do("POST", "/v1/appointments/"+won[0].ID+"/reschedule", `{"start":"`+slotAt(16, 0).Format(time.RFC3339)+`"}`,
		"Authorization", "Bearer "+e.token(won[0].ClientID, auth.RoleClient), "Content-Type", "application/json"); r.status != 200 {
		t.Fatalf("reschedule: %d %s", r.status, r.body)
	}
	if r := e.bookService(e.token("late", auth.RoleClient), "sauna-session", "", slotAt(14, 0)); r.status != 201 {
		t.Fatalf("after the move: %d %s", r.status, r.body)
	}
}

// Many clients race for a few hours of a sauna for three across six
// therapists: never more than three live appointments overlap in the
// database.
func TestResourceRaceNeverOverbooks(t *testing.T) {
	const clients, staff, capacity = 100, 6, 3
	e := newResourceEnv(t, staff, capacity)
	hours := []time.Time{slotAt(9, 0), slotAt(9, 30), slotAt(10, 0), slotAt(11, 0)}
	var book []func() result
	for i := range clients {
		tok := e.token(fmt.Sprint("c", i), auth.RoleClient)
		staffID := ""
		if i%4 != 0 {
			staffID = fmt.Sprint("s", i%staff)
		}
		book = append(book, func() result { return e.bookService(tok, "sauna-session", staffID, hours[i%len(hours)]) })
	}
	won := raceBook(t, e, book)
	var live []persistence.Appointment
	if err := e.store.InTx(context.Background(), func(tx persistence.Tx) (err error) {
		live, err = tx.AppointmentList(context.Background(), persistence.AppointmentRange{ResourceID: "sauna",
			From: slotAt(0, 0), To: slotAt(23, 59), LiveAt: bookingNow})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(live) != len(won) || len(won) == 0 {
		t.Fatalf("%d live appointments stored, %d bookings answered 201", len(live), len(won))
	}
	// The largest overlap starts at some appointment's start.
	for _, a := range live {
		n := 0
		for _, b := range live {
			if !b.Start.Add(-b.BufferBefore).After(a.Start) && b.End.Add(b.BufferAfter).After(a.Start) {
				n++
			}
		}
		if n > capacity {
			t.Fatalf("%d live appointments use the sauna at %v (capacity %d)", n, a.Start, capacity)
		}
	}
	// At most three at 09:00-10:00, 10:00-11:00 and 11:00-12:00. Fewer is
	// possible: a claim whose therapist turned out to be taken blocks its
	// unit until it is released.
	if len(won) < capacity || len(won) > 3*capacity {
		t.Fatalf("%d bookings won, want %d to %d", len(won), capacity, 3*capacity)
	}
	// Every claim was either replaced by its appointment or released.
	var claims []persistence.ResourceClaim
	if err := e.store.InTx(context.Background(), func(tx persistence.Tx) (err error) {
		claims, err = tx.ResourceClaimList(context.Background(), "sauna", slotAt(0, 0), slotAt(23, 59), bookingNow)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(claims) != 0 {
		t.Fatalf("%d claims left after the race: %+v", len(claims), claims)
	}
}
