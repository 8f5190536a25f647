package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/schedule/claimcheck"
	"github.com/spa-engine/spa/actors/testwait"
)

// api is a small HTTP client for end-to-end tests.
type api struct {
	t    *testing.T
	base string
}

// everyDay is weekly hours open from start to end ("08:00") every day.
func everyDay(start, end string) map[string]any {
	week := map[string]any{}
	for _, d := range []string{"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"} {
		week[d] = []map[string]string{{"start": start, "end": end}}
	}
	return week
}

// seedAnaMassage creates the notification tests' studio: Ana, open
// 08:00-18:00 every day in Bogotá, and an hour's massage ($120,000 COP,
// cancellable up to an hour before) that she performs.
func (a api) seedAnaMassage(admin string) {
	a.t.Helper()
	a.must(200, "PUT", "/v1/admin/staff/ana", admin, map[string]any{"name": "Ana", "skills": []string{"massage"},
		"time_zone": "America/Bogota", "weekly_hours": everyDay("08:00", "18:00"), "active": true, "version": 0})
	a.must(200, "PUT", "/v1/admin/services/massage-60", admin, map[string]any{"name": "Masaje", "category": "body",
		"duration_minutes": 60, "price_minor": 12000000, "required_skills": []string{"massage"},
		"cancel_cutoff_minutes": 60, "active": true, "version": 0})
}

// anaSlots is Ana's massage starts on the Bogotá day daysAhead from today;
// fewer than least fails the test.
func (a api) anaSlots(daysAhead, least int) []any {
	a.t.Helper()
	bogota, _ := time.LoadLocation("America/Bogota")
	day := time.Now().In(bogota).AddDate(0, 0, daysAhead)
	from := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, bogota)
	q := url.Values{"service": {"massage-60"}, "staff": {"ana"},
		"from": {from.Format(time.RFC3339)}, "to": {from.AddDate(0, 0, 1).Format(time.RFC3339)}}
	slots := a.must(200, "GET", "/v1/availability?"+q.Encode(), "", nil)["slots"].([]any)
	if len(slots) < least {
		a.t.Fatalf("%d of Ana's slots %d days ahead, want at least %d", len(slots), daysAhead, least)
	}
	return slots
}

func (a api) call(method, path, token string, body any, hdr ...string) (int, map[string]any) {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, a.base+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(b, &out)
	return res.StatusCode, out
}

func (a api) must(want int, method, path, token string, body any, hdr ...string) map[string]any {
	a.t.Helper()
	code, out := a.call(method, path, token, body, hdr...)
	if code != want {
		a.t.Fatalf("%s %s = %d %v, want %d", method, path, code, out, want)
	}
	return out
}

// mustAfter503 is must for a client that retries while it is told 503
// (the owner of the state is moving, or a stale activation was fenced)
// for up to 30 s; only requests safe to repeat (reads, keyed writes).
func (a api) mustAfter503(want int, method, path, token string, body any, hdr ...string) map[string]any {
	a.t.Helper()
	var code int
	var out map[string]any
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, out = a.call(method, path, token, body, hdr...)
		if code != http.StatusServiceUnavailable || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code != want {
		a.t.Fatalf("%s %s = %d %v, want %d", method, path, code, out, want)
	}
	return out
}

func issueToken(t *testing.T, dataDir, subject, role string) string {
	t.Helper()
	var out bytes.Buffer
	if err := run(t.Context(), []string{"token", "--subject", subject, "--role", role, "--data-dir", dataDir},
		func(string) string { return "" }, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out.String())
}

// TestBookingEndToEnd goes from catalogue to availability to hold to
// confirm to cancel through HTTP against a served node, on each driver.
func TestBookingEndToEnd(t *testing.T) {
	for name, envFor := range drivers(t) {
		t.Run(name, func(t *testing.T) {
			dataDir := t.TempDir()
			base, _, _ := serveInProcess(t, envFor(t), dataDir)
			a := api{t, base}
			admin := issueToken(t, dataDir, "owner", "admin")
			client := issueToken(t, dataDir, "maria", "client")

			week := everyDay("08:00", "18:00")
			a.must(200, "PUT", "/v1/admin/staff/ana", admin, map[string]any{"name": "Ana", "skills": []string{"massage"},
				"time_zone": "America/Bogota", "weekly_hours": week, "active": true, "version": 0})
			a.must(200, "PUT", "/v1/admin/services/massage-60", admin, map[string]any{"name": "Masaje", "category": "body",
				"duration_minutes": 60, "price_minor": 12000000, "buffer_after_minutes": 15, "required_skills": []string{"massage"},
				"cancel_cutoff_minutes": 60, "active": true, "version": 0})
			if svc := a.must(200, "GET", "/v1/services/massage-60", "", nil); svc["price_minor"] != float64(12000000) {
				t.Fatalf("catalogue: %v", svc)
			}

			bogota, _ := time.LoadLocation("America/Bogota")
			day := time.Now().In(bogota).AddDate(0, 0, 2)
			from := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, bogota)
			q := url.Values{"service": {"massage-60"}, "staff": {"ana"},
				"from": {from.Format(time.RFC3339)}, "to": {from.AddDate(0, 0, 1).Format(time.RFC3339)}}
			avail := func() []any {
				return a.must(200, "GET", "/v1/availability?"+q.Encode(), "", nil)["slots"].([]any)
			}
			slots := avail()
			if len(slots) == 0 {
				t.Fatal("no availability")
			}
			start := slots[4].(map[string]any)["start"].(string)

			held := a.must(201, "POST", "/v1/appointments", client, map[string]any{"service_id": "massage-60", "staff_id": "ana", "start": start},
				"Idempotency-Key", "book-1")
			id := held["id"].(string)
			if held["status"] != "held" {
				t.Fatalf("hold: %v", held)
			}
			if len(avail()) >= len(slots) {
				t.Fatal("the held slot is still offered")
			}
			a.must(200, "POST", "/v1/appointments/"+id+"/confirm", client, nil)
			if got := a.must(200, "GET", "/v1/appointments/"+id, client, nil); got["status"] != "confirmed" {
				t.Fatalf("after confirm: %v", got)
			}
			// Juan waits for that morning; when Maria cancels, the freed slot
			// is held for him through the waitlist.
			juan := issueToken(t, dataDir, "juan", "client")
			startT, _ := time.Parse(time.RFC3339, start)
			a.must(201, "POST", "/v1/waitlist", juan, map[string]any{"service_id": "massage-60",
				"from": startT.Add(-time.Hour).Format(time.RFC3339), "to": startT.Add(3 * time.Hour).Format(time.RFC3339)})
			a.must(200, "POST", "/v1/appointments/"+id+"/cancel", client, map[string]any{"reason": "cannot make it"})
			if got := a.must(200, "GET", "/v1/appointments/"+id, client, nil); got["status"] != "cancelled" {
				t.Fatalf("after cancel: %v", got)
			}
			var offered string
			testwait.For(t, 10*time.Second, "the waitlist offer", func() bool {
				entries := a.must(200, "GET", "/v1/me/waitlist", juan, nil)["entries"].([]any)
				e := entries[0].(map[string]any)
				offered, _ = e["offered_appointment_id"].(string)
				return e["status"] == "offered"
			})
			if got := a.must(200, "GET", "/v1/appointments/"+offered, juan, nil); got["status"] != "held" || got["start"] != start {
				t.Fatalf("offered hold: %v (start %s)", got, start)
			}
			a.must(200, "POST", "/v1/appointments/"+offered+"/cancel", juan, nil)
			if len(avail()) != len(slots) {
				t.Fatal("cancelling did not free the slot")
			}

			// Closing that day reaches the schedule actor through the
			// CatalogueChanged event: availability empties.
			a.must(200, "PUT", "/v1/admin/staff/ana/overrides/"+from.Format(time.DateOnly), admin, map[string]any{"closed": true})
			testwait.For(t, 10*time.Second, "the day off to reach the schedule actor", func() bool { return len(avail()) == 0 })
			code, body := a.call("POST", "/v1/appointments", client, map[string]any{"service_id": "massage-60", "staff_id": "ana", "start": start})
			if code != 409 || fmt.Sprint(body["error"].(map[string]any)["code"]) != "slot_taken" {
				t.Fatalf("booking a closed day: %d %v", code, body)
			}
		})
	}
}

// TestBookingRaceEndToEnd: 500 clients race through HTTP for the 20 slots
// of one staff member's day on a served node, on each driver. Exactly 20
// win, the 480 others get 409 slot_taken and nothing else, and the
// recorded history passes porcupine's linearizability check.
func TestBookingRaceEndToEnd(t *testing.T) {
	for name, envFor := range drivers(t) {
		t.Run(name, func(t *testing.T) {
			dataDir := t.TempDir()
			env := envFor(t)
			env["SPA_SLOT_STEP"] = "30m"
			base, _, _ := serveInProcess(t, env, dataDir)
			a := api{t, base}
			admin := issueToken(t, dataDir, "owner", "admin")
			week := everyDay("08:00", "18:00")
			a.must(200, "PUT", "/v1/admin/staff/ana", admin, map[string]any{"name": "Ana", "time_zone": "America/Bogota",
				"weekly_hours": week, "active": true, "version": 0})
			a.must(200, "PUT", "/v1/admin/services/facial", admin, map[string]any{"name": "Facial", "category": "face",
				"duration_minutes": 30, "active": true, "version": 0})
			bogota, _ := time.LoadLocation("America/Bogota")
			day := time.Now().In(bogota).AddDate(0, 0, 2)
			var slots []string
			for m := 8 * 60; m < 18*60; m += 30 {
				slots = append(slots, time.Date(day.Year(), day.Month(), day.Day(), m/60, m%60, 0, 0, bogota).Format(time.RFC3339))
			}
			const clients = 500
			tokens := make([]string, clients)
			for i := range tokens {
				tokens[i] = issueToken(t, dataDir, fmt.Sprint("c", i), "client")
			}
			client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
			rec := claimcheck.NewRecorder()
			var won, refused atomic.Int32
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range clients {
				wg.Go(func() {
					<-start
					slot := slots[(i*7)%len(slots)]
					rec.Claim(i, slot, func() claimcheck.Outcome {
						body, _ := json.Marshal(map[string]string{"service_id": "facial", "staff_id": "ana", "start": slot})
						req, _ := http.NewRequest("POST", base+"/v1/appointments", bytes.NewReader(body))
						req.Header.Set("Content-Type", "application/json")
						req.Header.Set("Authorization", "Bearer "+tokens[i])
						res, err := client.Do(req)
						if err != nil {
							t.Errorf("client %d: %v", i, err)
							return claimcheck.Ambiguous
						}
						defer res.Body.Close()
						var out struct {
							Error struct{ Code string } `json:"error"`
						}
						_ = json.NewDecoder(res.Body).Decode(&out)
						switch {
						case res.StatusCode == 201:
							won.Add(1)
							return claimcheck.Won
						case res.StatusCode == 409 && out.Error.Code == "slot_taken":
							refused.Add(1)
							return claimcheck.Refused
						}
						t.Errorf("client %d: %d %s", i, res.StatusCode, out.Error.Code)
						return claimcheck.Ambiguous
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
		})
	}
}
