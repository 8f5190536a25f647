package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/actors/testwait"
	"github.com/spa-engine/spa/cluster/natsserver/natstest"
)

// The keyed writes whose effects happen in actors (a hold claims a slot in
// a schedule actor, a cart line reserves stock through the cart and
// inventory actors) must survive a kill -9 just as the studio's
// transactional writes do (TestKillMidRequestLosesNothing): every answer a
// client saw replays byte for byte after the restart, and the request the
// kill cut off, retried, takes effect exactly once.

// Enough acknowledged successes per stream before the kill, and the fewest
// the checks accept (the stream may be cut before it reports).
const (
	keyedAcksBeforeKill = 25
	keyedAcksRequired   = 20
)

// The seed: one staff member working 06:00-22:00 in Bogotá every day, a
// 15-minute service with no buffer (so every quarter hour is its own slot),
// and three shop variants with stock for any cart line the stream sets.
const (
	crashStaff    = "ana"
	crashService  = "quick-15"
	crashTimeZone = "America/Bogota"
	dayOpens      = 6  // hour
	dayCloses     = 22 // hour
	crashStock    = 40 // units received per variant
	maxCrashQty   = 5  // a cart line's quantity cycles through 1..maxCrashQty
)

var crashVariants = []string{"oil-a", "oil-b", "oil-c"}

// keyedCall is one keyed write: the request, the answer the stream expects
// and what it claims, for the checks after the restart.
type keyedCall struct {
	method, path, token, key string
	body                     []byte

	want     int    // the expected status: a 2xx, or 409 for a refusal
	wantCode string // the refusal's error code

	slot    time.Time // a hold's start
	variant string    // a cart line's variant
	qty     int64     // and its quantity
}

func (k keyedCall) String() string { return k.method + " " + k.path + " (key " + k.key + ")" }

func (k keyedCall) send(client *http.Client, base string) (reply, error) {
	req, err := http.NewRequest(k.method, base+k.path, bytes.NewReader(k.body))
	if err != nil {
		return reply{}, err
	}
	req.Header.Set("Authorization", "Bearer "+k.token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", k.key)
	res, err := client.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return reply{}, err
	}
	return reply{res.StatusCode, body, res.Header.Get("Idempotent-Replayed") == "true"}, nil
}

// answered reports whether rep is the answer the stream expects.
func (k keyedCall) answered(rep reply) bool {
	return rep.status == k.want && (k.wantCode == "" || errorCode(rep.body) == k.wantCode)
}

func success(status int) bool { return status >= 200 && status < 300 }

// errorCode is the code of an error answer ("" for anything else).
func errorCode(body []byte) string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	return e.Error.Code
}

type ackedCall struct {
	keyedCall
	rep reply
}

// keyedStream sends calls one after another, as one client would, until a
// call gets no answer: the kill. Its fields are the goroutine's until done
// is closed.
type keyedStream struct {
	acked     []ackedCall
	successes int
	cut       *keyedCall    // the call in flight when the server died
	enough    chan struct{} // closed once enough successes are in, or when the stream stops
	done      chan struct{}
}

// startStream sends next(0), next(1), ... to base; next says false when it
// has no more calls, which fails the test: the kill must come first.
func startStream(t *testing.T, client *http.Client, base string, next func(i int) (keyedCall, bool)) *keyedStream {
	s := &keyedStream{enough: make(chan struct{}), done: make(chan struct{})}
	var once sync.Once
	signal := func() { once.Do(func() { close(s.enough) }) }
	go func() {
		defer close(s.done)
		defer signal() // a stream that stops early must not keep the test waiting
		for i := 0; ; i++ {
			call, ok := next(i)
			if !ok {
				t.Errorf("the stream ran out of calls after %d answers, before the kill", len(s.acked))
				return
			}
			rep, err := call.send(client, base)
			if err != nil {
				s.cut = &call
				return
			}
			if !call.answered(rep) {
				t.Errorf("%s = %d %s, want %d %s", call, rep.status, rep.body, call.want, call.wantCode)
				return
			}
			s.acked = append(s.acked, ackedCall{call, rep})
			if success(rep.status) {
				s.successes++
			}
			if s.successes >= keyedAcksBeforeKill {
				signal()
			}
		}
	}()
	return s
}

// checkStopped fails the test unless the stream was acknowledged enough
// successes and then cut off by the kill.
func (s *keyedStream) checkStopped(t *testing.T, name string) {
	t.Helper()
	if s.successes < keyedAcksRequired {
		t.Fatalf("%s: only %d successes acknowledged before the kill", name, s.successes)
	}
	if s.cut == nil {
		t.Fatalf("%s: no call was cut off by the kill", name)
	}
	t.Logf("%s: %d answers (%d successes) before the kill cut off %s", name, len(s.acked), s.successes, s.cut)
}

// checkReplays resends every acknowledged call with its key and body. A
// success must come back as it was, byte for byte, marked replayed. A
// refusal may be decided again, but the slot it was refused is held by an
// acknowledged appointment, so it must stay refused the same way.
func (s *keyedStream) checkReplays(t *testing.T, client *http.Client, base string) {
	t.Helper()
	for _, a := range s.acked {
		rep, err := a.send(client, base)
		if err != nil {
			t.Fatal(err)
		}
		if !success(a.rep.status) {
			if success(rep.status) || !a.answered(rep) {
				t.Fatalf("refusal %s resent after the restart = %d %s, want %d %s", a.keyedCall, rep.status, rep.body, a.want, a.wantCode)
			}
			continue
		}
		if rep.status != a.rep.status || !bytes.Equal(rep.body, a.rep.body) || !rep.replayed {
			t.Fatalf("replay of %s after the restart = %d replayed=%v %s, want %d replayed=true %s",
				a.keyedCall, rep.status, rep.replayed, rep.body, a.rep.status, a.rep.body)
		}
	}
}

// retryCut resends the cut-off call until its key is free: its dead
// attempt may still hold it until the lock lapses. Then the retry either
// replays what the attempt committed or runs it now.
func (s *keyedStream) retryCut(t *testing.T, client *http.Client, base string) reply {
	t.Helper()
	var final reply
	tries := 0
	testwait.For(t, 15*time.Second, "the cut-off key "+s.cut.key+" to be free", func() bool {
		rep, err := s.cut.send(client, base)
		if err != nil {
			t.Fatal(err)
		}
		final, tries = rep, tries+1
		return !(rep.status == http.StatusConflict && errorCode(rep.body) == fault.CodeIdempotencyKeyInUse)
	})
	if !s.cut.answered(final) {
		t.Fatalf("retry of the cut-off %s = %d %s, want %d %s", s.cut, final.status, final.body, s.cut.want, s.cut.wantCode)
	}
	t.Logf("the cut-off %s answered %d (replayed=%t) after %d tries", s.cut, final.status, final.replayed, tries)
	return final
}

// TestKillKeyedWritesReplay kills the server with SIGKILL while two clients
// stream keyed writes whose effects happen in actors (holds, some refused
// as slot_taken, and cart lines), restarts it on the same data, and shows
// that every acknowledged answer replays unchanged, that the call cut off
// takes effect once when retried, and that the store holds exactly the
// acknowledged appointments and the last acknowledged cart quantities.
func TestKillKeyedWritesReplay(t *testing.T) {
	bin := buildBinary(t)
	for name, envFor := range drivers(t) {
		t.Run(name, func(t *testing.T) {
			dataDir := t.TempDir()
			env := envFor(t)
			env["SPA_DATA_DIR"] = dataDir
			env["SPA_HTTP_ADDR"] = "127.0.0.1:0"
			env["SPA_NATS_PORT"] = strconv.Itoa(natstest.FreePort(t))
			env["SPA_IDEMPOTENCY_LOCK_TTL"] = "1s"
			withoutHoardingCaps(env) // one client holds slot after slot

			p := startProcess(t, bin, env)
			admin := issueToken(t, dataDir, "owner", "admin")
			booker := issueToken(t, dataDir, "maria", "client")
			shopper := issueToken(t, dataDir, "juan", "client")
			seedBooking(t, p.base, admin)
			seedShop(t, p.base, admin)
			cartID := api{t, p.base}.must(201, "POST", "/v1/carts", shopper, nil)["id"].(string)
			client := &http.Client{Timeout: 10 * time.Second}

			holds := startStream(t, client, p.base, holdCalls(booker, shopper, crashSlots(t)))
			lines := startStream(t, client, p.base, cartLineCalls(shopper, cartID))
			<-holds.enough
			<-lines.enough
			if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-holds.done
			<-lines.done
			<-p.exited
			holds.checkStopped(t, "holds")
			lines.checkStopped(t, "cart lines")

			p2 := startProcess(t, bin, env)
			holds.checkReplays(t, client, p2.base)
			lines.checkReplays(t, client, p2.base)
			checkHoldsOnce(t, p2.base, admin, holds, holds.retryCut(t, client, p2.base))
			lines.retryCut(t, client, p2.base)
			checkCartLines(t, p2.base, admin, shopper, cartID, lines)

			stopGracefully(t, p2)
		})
	}
}

// seedBooking adds the staff member and the service the holds book.
func seedBooking(t *testing.T, base, admin string) {
	a := api{t, base}
	week := everyDay(fmt.Sprintf("%02d:00", dayOpens), fmt.Sprintf("%02d:00", dayCloses))
	a.must(200, "PUT", "/v1/admin/staff/"+crashStaff, admin, map[string]any{"name": "Ana", "skills": []string{"massage"},
		"time_zone": crashTimeZone, "weekly_hours": week, "active": true, "version": 0})
	a.must(200, "PUT", "/v1/admin/services/"+crashService, admin, map[string]any{"name": "Quick massage", "category": "body",
		"duration_minutes": 15, "price_minor": 3000000, "buffer_after_minutes": 0, "required_skills": []string{"massage"},
		"cancel_cutoff_minutes": 60, "active": true, "version": 0})
}

// seedShop adds the variants the cart lines set, with stock.
func seedShop(t *testing.T, base, admin string) {
	a := api{t, base}
	a.must(200, "PUT", "/v1/admin/shop/categories/oils", admin, map[string]any{"name": "Oils", "active": true, "version": 0})
	a.must(200, "PUT", "/v1/admin/shop/products/oil", admin, map[string]any{"name": "Massage oil", "description": "For the crash test",
		"category_id": "oils", "active": true, "version": 0})
	for i, v := range crashVariants {
		a.must(200, "PUT", "/v1/admin/shop/variants/"+v, admin, map[string]any{"product_id": "oil", "sku": fmt.Sprintf("OIL-%d", i),
			"price_minor": 2000000, "tax_rate_bp": 1900, "low_stock_threshold": 1, "active": true, "version": 0})
		a.must(201, "POST", "/v1/admin/shop/variants/"+v+"/stock-movements", admin,
			map[string]any{"kind": "receipt", "qty": crashStock, "reason": "crash test"}, "Idempotency-Key", "receipt-"+v)
	}
}

// crashSlots are the quarter hours the staff member works from tomorrow
// on, far more than the stream can claim before the kill.
func crashSlots(t *testing.T) []time.Time {
	loc, err := time.LoadLocation(crashTimeZone)
	if err != nil {
		t.Fatal(err)
	}
	today := time.Now().In(loc)
	var slots []time.Time
	for day := 1; day <= 60; day++ {
		d := today.AddDate(0, 0, day)
		for at := time.Date(d.Year(), d.Month(), d.Day(), dayOpens, 0, 0, 0, loc); at.Hour() < dayCloses; at = at.Add(15 * time.Minute) {
			slots = append(slots, at)
		}
	}
	return slots
}

// holdCalls holds each slot in turn under its own key, and every fourth
// slot a second time, by rival under another key: that one is refused
// slot_taken (the holder asking again would get its own hold back).
func holdCalls(token, rival string, slots []time.Time) func(int) (keyedCall, bool) {
	var plan []keyedCall
	hold := func(token, key string, slot time.Time, want int, code string) keyedCall {
		body, _ := json.Marshal(struct {
			ServiceID string `json:"service_id"`
			StaffID   string `json:"staff_id"`
			Start     string `json:"start"`
		}{crashService, crashStaff, slot.Format(time.RFC3339)})
		return keyedCall{method: "POST", path: "/v1/appointments", token: token, key: key, body: body,
			want: want, wantCode: code, slot: slot}
	}
	for j, slot := range slots {
		plan = append(plan, hold(token, fmt.Sprintf("hold-%d", j), slot, http.StatusCreated, ""))
		if j%4 == 3 {
			plan = append(plan, hold(rival, fmt.Sprintf("hold-%d-again", j), slot, http.StatusConflict, fault.CodeSlotTaken))
		}
	}
	return func(i int) (keyedCall, bool) {
		if i >= len(plan) {
			return keyedCall{}, false
		}
		return plan[i], true
	}
}

// cartLineCalls sets the variants' lines in turn, each time to a quantity
// other than its last, so every call changes the cart.
func cartLineCalls(token, cartID string) func(int) (keyedCall, bool) {
	return func(i int) (keyedCall, bool) {
		variant := crashVariants[i%len(crashVariants)]
		qty := int64(i/len(crashVariants)%maxCrashQty + 1)
		return keyedCall{method: "PUT", path: "/v1/carts/" + cartID + "/lines/" + variant, token: token,
			key: fmt.Sprintf("line-%d", i), body: []byte(fmt.Sprintf(`{"qty":%d}`, qty)),
			want: http.StatusOK, variant: variant, qty: qty}, true
	}
}

// checkHoldsOnce reads the staff member's agenda, straight from the store,
// for every day the holds touched: it must list exactly one appointment per
// acknowledged hold, plus the cut-off one when its retry succeeded, and
// no two on one slot.
func checkHoldsOnce(t *testing.T, base, admin string, holds *keyedStream, cutRetry reply) {
	t.Helper()
	want := map[string]time.Time{} // appointment id -> start
	days := map[string]bool{}
	loc, _ := time.LoadLocation(crashTimeZone)
	expect := func(c keyedCall, rep reply) {
		days[c.slot.In(loc).Format(time.DateOnly)] = true
		if !success(rep.status) {
			return
		}
		var ap struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(rep.body, &ap); err != nil || ap.ID == "" {
			t.Fatalf("%s answered %s: no appointment id", c, rep.body)
		}
		if _, dup := want[ap.ID]; dup {
			t.Fatalf("two holds answered with appointment %s", ap.ID)
		}
		want[ap.ID] = c.slot
	}
	for _, a := range holds.acked {
		expect(a.keyedCall, a.rep)
	}
	expect(*holds.cut, cutRetry)

	a := api{t, base}
	got := map[string]time.Time{}
	taken := map[time.Time]string{}
	for day := range days {
		q := url.Values{"staff": {crashStaff}, "date": {day}}
		agenda := a.must(200, "GET", "/v1/agenda?"+q.Encode(), admin, nil)["appointments"].([]any)
		for _, e := range agenda {
			ap := e.(map[string]any)
			id := ap["id"].(string)
			start, err := time.Parse(time.RFC3339, ap["start"].(string))
			if err != nil {
				t.Fatal(err)
			}
			if other, dup := taken[start]; dup {
				t.Fatalf("slot %s is held twice: %s and %s", start, other, id)
			}
			taken[start], got[id] = id, start
		}
	}
	for id, start := range want {
		if at, ok := got[id]; !ok || !at.Equal(start) {
			t.Fatalf("acknowledged appointment %s at %s: in the agenda at %v (found %t)", id, start, at, ok)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("the agenda lists %d appointments, want %d: one per acknowledged hold and the cut-off one if it succeeded", len(got), len(want))
	}
}

// checkCartLines reads the cart and the stock after the cut-off call was
// retried: each line holds the last quantity set for its variant (the
// cut-off call's for its variant) and reserves exactly that much stock.
func checkCartLines(t *testing.T, base, admin, shopper, cartID string, lines *keyedStream) {
	t.Helper()
	last := map[string]int64{}
	for _, a := range lines.acked {
		last[a.variant] = a.qty
	}
	last[lines.cut.variant] = lines.cut.qty

	a := api{t, base}
	got := map[string]int64{}
	for _, l := range a.must(200, "GET", "/v1/carts/"+cartID, shopper, nil)["lines"].([]any) {
		line := l.(map[string]any)
		got[line["variant_id"].(string)] = int64(line["qty"].(float64))
	}
	if fmt.Sprint(got) != fmt.Sprint(last) {
		t.Fatalf("cart lines after the restart %v, want the last quantities set %v", got, last)
	}
	for _, v := range crashVariants {
		stock := a.must(200, "GET", "/v1/admin/shop/variants/"+v+"/stock", admin, nil)
		if stock["on_hand"] != float64(crashStock) || stock["held"] != float64(last[v]) || stock["available"] != float64(crashStock-last[v]) {
			t.Fatalf("stock of %s after the restart %v, want %d on hand with %d held by the cart", v, stock, crashStock, last[v])
		}
	}
}

// stopGracefully ends p with SIGTERM and expects a clean exit.
func stopGracefully(t *testing.T, p *process) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		if err != nil {
			t.Fatalf("graceful shutdown exit: %v\n%s", err, p.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("server did not stop on SIGTERM")
	}
}
