package main

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestSQLiteBurstNever500 is issue 20's SQLite burst through a served
// node on the embedded default: 500 clients claim three random slots each
// at once (1,500 claims, each under an Idempotency-Key of its own, caps
// off). No claim is a 500: each is 201, 200 (the client's own hold back),
// 409 slot_taken, or 503 unavailable with Retry-After, which the client
// retries under the same key.
func TestSQLiteBurstNever500(t *testing.T) {
	dataDir := t.TempDir()
	base, _, _ := serveInProcess(t, map[string]string{"SPA_SLOT_STEP": "30m", "SPA_HOLDS_PER_CLIENT": "0", "SPA_HOLDS_PER_IP": "0"}, dataDir)
	a := api{t, base}
	admin := issueToken(t, dataDir, "owner", "admin")
	a.must(200, "PUT", "/v1/admin/staff/ana", admin, map[string]any{"name": "Ana", "time_zone": "America/Bogota",
		"weekly_hours": everyDay("08:00", "18:00"), "active": true, "version": 0})
	a.must(200, "PUT", "/v1/admin/services/facial", admin, map[string]any{"name": "Facial", "category": "face",
		"duration_minutes": 30, "active": true, "version": 0})
	bogota, _ := time.LoadLocation("America/Bogota")
	day := time.Now().In(bogota).AddDate(0, 0, 2)
	var slots []string
	for m := 8 * 60; m < 18*60; m += 30 {
		slots = append(slots, time.Date(day.Year(), day.Month(), day.Day(), m/60, m%60, 0, 0, bogota).Format(time.RFC3339))
	}
	const clients, claimsEach = 500, 3
	tokens := make([]string, clients)
	for i := range tokens {
		tokens[i] = issueToken(t, dataDir, fmt.Sprint("c", i), "client")
	}
	rng := rand.New(rand.NewPCG(20, 3))
	var statuses sync.Map // status -> *atomic.Int32
	count := func(s int) {
		n, _ := statuses.LoadOrStore(s, new(atomic.Int32))
		n.(*atomic.Int32).Add(1)
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range clients {
		for j := range claimsEach {
			slot := slots[rng.IntN(len(slots))]
			wg.Go(func() {
				<-start
				body := map[string]any{"service_id": "facial", "staff_id": "ana", "start": slot}
				key := fmt.Sprintf("burst-%d-%d", i, j)
				for try := 0; ; try++ {
					status, retry, out := rawCall(t, base, "POST", "/v1/appointments", tokens[i], body, "Idempotency-Key", key)
					count(status)
					switch {
					case status == 201 || status == 200:
						return
					case status == 409 && fmt.Sprint(out["error"].(map[string]any)["code"]) == "slot_taken":
						return
					case status == 503 && retry != "" && try < 30:
						time.Sleep(50 * time.Millisecond)
					default:
						t.Errorf("client %d claim %d: %d %v", i, j, status, out)
						return
					}
				}
			})
		}
	}
	close(start)
	wg.Wait()
	statuses.Range(func(k, v any) bool { t.Logf("%d: %d answers", k, v.(*atomic.Int32).Load()); return true })
}
