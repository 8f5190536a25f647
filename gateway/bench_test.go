package gateway

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/spa-engine/spa/actors/auth"
)

// The edge's cost per request, on SQLite, as ratios within one run:
// Healthz is the floor (middleware only), Replay adds one read
// transaction, Fresh adds the claim and the effect's transactions.

func BenchmarkHealthz(b *testing.B) {
	e := newEnv(b)
	for b.Loop() {
		if r := e.do("GET", "/healthz", ""); r.status != 200 {
			b.Fatal(r.status)
		}
	}
}

func BenchmarkStudioPutReplay(b *testing.B) {
	e := newEnv(b)
	tok := e.token("bench", auth.RoleAdmin)
	body := `{"name":"Bench","time_zone":"America/Bogota","currency":"COP","version":0}`
	if r := e.putStudio(tok, body, "Idempotency-Key", "k"); r.status != 200 {
		b.Fatal(r.status, string(r.body))
	}
	for b.Loop() {
		if r := e.putStudio(tok, body, "Idempotency-Key", "k"); r.status != 200 || r.header.Get("Idempotent-Replayed") != "true" {
			b.Fatal(r.status, string(r.body))
		}
	}
}

func BenchmarkStudioPutFresh(b *testing.B) {
	e := newEnv(b)
	tok := e.token("bench", auth.RoleAdmin)
	v := 0
	for b.Loop() {
		body := fmt.Sprintf(`{"name":"Bench","time_zone":"America/Bogota","currency":"COP","version":%d}`, v)
		if r := e.putStudio(tok, body, "Idempotency-Key", fmt.Sprint("k", v)); r.status != 200 {
			b.Fatal(r.status, string(r.body))
		}
		v++
	}
}

// BenchmarkHotRefusal: a refused claim through the whole edge (auth,
// idempotency wrapper without a key, catalogue cache, schedule actor,
// alternatives) on a slot already held: the hot-therapist case.
func BenchmarkHotRefusal(b *testing.B) {
	e := newBookingEnvTB(b)
	tok := e.token("bench", auth.RoleClient)
	if r := e.book(tok, "ana", slotAt(10, 0)); r.status != 201 {
		b.Fatal(r.status)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if r := e.book(tok, "ana", slotAt(10, 0)); r.status != 409 {
				b.Fatal(r.status)
			}
		}
	})
}

// BenchmarkAvailabilityDay: one staff member's day of slots through the
// whole edge (no authentication needed), on a calendar with one booking:
// the read that makes up most of the mixed scenario.
func BenchmarkAvailabilityDay(b *testing.B) {
	e := newBookingEnvTB(b)
	if r := e.book(e.token("bench", auth.RoleClient), "ana", slotAt(10, 0)); r.status != 201 {
		b.Fatal(r.status)
	}
	path := "/v1/availability?service=facial&staff=ana&from=" + url.QueryEscape(slotAt(0, 0).Format(time.RFC3339)) +
		"&to=" + url.QueryEscape(slotAt(0, 0).AddDate(0, 0, 1).Format(time.RFC3339))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if r := e.do("GET", path, ""); r.status != 200 {
				b.Fatal(r.status, string(r.body))
			}
		}
	})
}

// BenchmarkHotRefusalHandler is BenchmarkHotRefusal without the test
// client: fiber's handler is called directly on one reused request, the
// way fasthttp calls it, and the log is at warn level as in `spa serve
// --log-level warn`. What it reports (ns/op, B/op, allocs/op) is the
// server's own cost per hot refusal, minus the socket.
func BenchmarkHotRefusalHandler(b *testing.B) {
	e := newBookingEnvTB(b, func(d *Deps) {
		d.Logger = slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	})
	tok := e.token("bench", auth.RoleClient)
	if r := e.book(tok, "ana", slotAt(10, 0)); r.status != 201 {
		b.Fatal(r.status)
	}
	h := e.app.Handler()
	// Keyed as clients send it: a fresh Idempotency-Key per claim. A
	// refusal stores nothing, so it should cost what an unkeyed one does.
	for _, keyed := range []bool{false, true} {
		b.Run(map[bool]string{false: "unkeyed", true: "keyed"}[keyed], func(b *testing.B) {
			var ctx fasthttp.RequestCtx
			ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
			ctx.Request.Header.SetMethod("POST")
			ctx.Request.SetRequestURI("/v1/appointments")
			ctx.Request.Header.Set("Authorization", "Bearer "+tok)
			ctx.Request.Header.SetContentType("application/json")
			ctx.Request.SetBodyString(fmt.Sprintf(`{"service_id":"facial","staff_id":"ana","start":%q}`, slotAt(10, 0).Format(time.RFC3339)))
			var key []byte
			defer reportCPU(b)()
			for i := 0; b.Loop(); i++ {
				if keyed {
					key = strconv.AppendInt(append(key[:0], "claim-"...), int64(i), 10)
					ctx.Request.Header.SetBytesV("Idempotency-Key", key)
				}
				ctx.Response.Reset()
				ctx.ResetUserValues() // as fasthttp does between requests
				h(&ctx)
				if ctx.Response.StatusCode() != 409 {
					b.Fatal(ctx.Response.StatusCode(), string(ctx.Response.Body()))
				}
			}
		})
	}
}

// reportCPU reports the process's CPU time per operation (cpu-ns/op: user
// and system, every goroutine: the handler's, the actors', the garbage
// collector's) when the returned function runs. On a machine shared with
// other work it moves far less than ns/op, which counts time spent
// waiting for a core.
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() { b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op") }
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
