// Package loadgen is `spa loadgen`: a load generator and correctness
// harness for the booking API. It seeds its own staff and service through
// the admin API (ids unique per run), drives one of its scenarios in a
// closed loop (N workers) or an open loop (a fixed arrival rate, latency
// measured from each operation's intended start), records latencies in HDR
// histograms, and checks every run: the claims' history with porcupine
// (claimcheck) and the database for overlapping live appointments. Any
// violation makes Run return ErrViolation.
//
// Scenarios:
//   - hot: every worker fights for the slots of one staff member's day and
//     keeps trying once they are all taken;
//   - spread: claims over many staff (Zipf-skewed popularity) and days;
//   - mixed: availability reads and writes (default 90/10); the writes are
//     claims, hold-confirm-cancel cycles and resubmissions of earlier claims
//     with their Idempotency-Key, which must replay the first answer;
//   - ceiling: hot's requests sent to a server whose answers are fixed
//     (`spa bare`), to measure what the HTTP stack and the generator alone
//     allow. Nothing is seeded and nothing is checked but that every answer
//     was the fixed refusal;
//   - webhooks: the payments burst (see webhooks.go): signed Wompi events
//     for intents paid once each, with duplicates and stale updates, then
//     a database check that each was applied exactly once.
package loadgen

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spa-engine/spa/actors/providers/wompi/wompifake"
	"github.com/spa-engine/spa/actors/schedule/claimcheck"
)

// Scenarios and modes.
const (
	ScenarioHot    = "hot"
	ScenarioSpread = "spread"
	ScenarioMixed  = "mixed"
	// ScenarioCeiling is the bare-HTTP ceiling: hot's claims against a
	// server that answers each with the same refusal.
	ScenarioCeiling = "ceiling"
	ModeClosed      = "closed"
	ModeOpen        = "open"
)

// ErrViolation: a correctness check failed; the result says which.
var ErrViolation = errors.New("loadgen: correctness violation")

// MintFunc mints a bearer token for subject with role ("client", "admin").
type MintFunc func(subject, role string) (string, error)

// Options configure one run. Zero values take the defaults noted.
type Options struct {
	BaseURL  string // e.g. http://127.0.0.1:8080
	Scenario string // hot, spread, mixed or ceiling
	Mode     string // closed (default) or open
	Workers  int    // closed: concurrent clients; open: most operations in flight (default 64)
	Rate     float64
	Duration time.Duration // default 20s
	// Staff and Days shape spread and mixed (defaults: spread 100 staff ×
	// 30 days, mixed 20 × 7); hot and ceiling always use one staff
	// member's day.
	Staff, Days int
	ZipfS       float64 // staff popularity exponent (default 1.1)
	ReadRatio   float64 // mixed: share of availability reads (default 0.9)
	Slot        time.Duration
	// Idempotency sends an Idempotency-Key with every claim; mixed always
	// does (its replays need them).
	Idempotency  bool
	Timeout      time.Duration // per request (default 10s)
	CheckTimeout time.Duration // porcupine's budget (default 2m)

	// AdminToken seeds the catalogue; Mint, when set, mints it and the
	// clients' own tokens (otherwise claims are made by the admin on the
	// clients' behalf).
	AdminToken string
	Mint       MintFunc

	// DatabaseURL (PostgreSQL) or SQLitePath is where the overlap check
	// looks; both empty skips it, which is itself a violation.
	DatabaseURL string
	SQLitePath  string

	Name, Label string
	Seed        uint64
	Progress    io.Writer // a status line every second; nil: quiet
	// ServerPIDs, when set, are the nodes' processes on this machine: the
	// run reports the CPU they and the local PostgreSQL spent (Result.CPU).
	ServerPIDs []int
	// MetricsURLs are the nodes' /metrics: the run reports how many of
	// their requests to placed actors were forwarded (Result.Cluster).
	MetricsURLs []string
	// Params are echoed into the result (e.g. the command line).
	Params map[string]string

	// The webhooks scenario: Events posted in the burst (default 5000),
	// DuplicateShare of them exact copies (default 0.2), and the fake
	// Wompi the node talks to, served on WompiAddr with the node's keys.
	Events         int
	DuplicateShare float64
	WompiKeys      wompifake.Keys
	WompiAddr      string
}

func (o *Options) defaults() error {
	o.BaseURL = strings.TrimRight(o.BaseURL, "/")
	if o.BaseURL == "" {
		return errors.New("loadgen: --url is required")
	}
	if o.Mode == "" {
		o.Mode = ModeClosed
	}
	if o.Mode != ModeClosed && o.Mode != ModeOpen {
		return fmt.Errorf("loadgen: --mode must be closed or open, got %q", o.Mode)
	}
	if o.Mode == ModeOpen && !(o.Rate > 0) {
		return errors.New("loadgen: --rate (operations per second) is required in open mode")
	}
	switch o.Scenario {
	case ScenarioHot, ScenarioCeiling:
		o.Staff, o.Days = 1, 1
	case ScenarioSpread:
		o.Staff, o.Days = cmpOr(o.Staff, 100), cmpOr(o.Days, 30)
	case ScenarioMixed:
		o.Staff, o.Days = cmpOr(o.Staff, 20), cmpOr(o.Days, 7)
		o.Idempotency = true
	case ScenarioWebhooks:
		if o.Mode != ModeClosed {
			return errors.New("loadgen: the webhooks scenario is a burst: --mode closed only")
		}
		o.Events = cmpOr(o.Events, 5000)
		if o.DuplicateShare < 0 || o.DuplicateShare > 0.9 {
			return errors.New("loadgen: --duplicates must be in [0, 0.9]")
		}
	default:
		return fmt.Errorf("loadgen: --scenario must be hot, spread, mixed, ceiling or webhooks, got %q", o.Scenario)
	}
	if o.Days > 80 {
		return errors.New("loadgen: --days must be at most 80 (the booking horizon is 90 days)")
	}
	o.Workers = cmpOr(o.Workers, 64)
	if o.Duration <= 0 {
		o.Duration = 20 * time.Second
	}
	if o.ZipfS == 0 {
		o.ZipfS = 1.1
	}
	if o.ReadRatio == 0 {
		o.ReadRatio = 0.9
	}
	if o.ReadRatio < 0 || o.ReadRatio > 1 {
		return errors.New("loadgen: --read-ratio must be in [0, 1]")
	}
	if o.Slot <= 0 {
		o.Slot = 15 * time.Minute
	}
	if o.Slot%time.Minute != 0 || (time.Duration(openMinutes)*time.Minute)%o.Slot != 0 {
		return fmt.Errorf("loadgen: --slot %s must be whole minutes dividing the %d-minute working day", o.Slot, openMinutes)
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.CheckTimeout <= 0 {
		o.CheckTimeout = 2 * time.Minute
	}
	if o.Name == "" {
		o.Name = o.Scenario
	}
	if o.Seed == 0 {
		o.Seed = mrand.Uint64()
	}
	return nil
}

func cmpOr(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// Working hours of every seeded staff member, every day, in Bogota (no
// DST, so every day has the same slots).
const (
	openFrom    = 6 * 60
	openMinutes = 16 * 60 // 06:00-22:00
	zone        = "America/Bogota"
)

// plan is the seeded world of one run.
type plan struct {
	runID     string
	service   string
	staff     []string // by popularity rank
	churn     string   // mixed: the staff member of the hold-confirm-cancel cycles
	days      []time.Time
	slots     int // per day
	freeSlots int // hot: free at the start
}

func (p *plan) start(day, slot int) time.Time {
	return p.days[day].Add(time.Duration(openFrom)*time.Minute + time.Duration(slot)*p.slotLen())
}

func (p *plan) slotLen() time.Duration {
	return time.Duration(openMinutes) * time.Minute / time.Duration(p.slots)
}

// newRunID returns a short id unique to the run: lower-case, slug-safe.
func newRunID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "lg" + hex.EncodeToString(b)
}

// Run seeds, drives the scenario for the configured duration, checks the
// outcome and returns the result. It returns ErrViolation (with the result)
// when a correctness check failed.
func Run(ctx context.Context, o Options) (*Result, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	c := newClient(o)
	stop := c.abortWhenDone(ctx)
	defer stop()
	if o.AdminToken == "" && o.Mint != nil {
		tok, err := o.Mint("loadgen-admin", "admin")
		if err != nil {
			return nil, fmt.Errorf("loadgen: admin token: %w", err)
		}
		o.AdminToken = tok
	}
	if o.AdminToken == "" {
		return nil, errors.New("loadgen: an admin token is needed to seed: --admin-token, SPA_ADMIN_TOKEN, or the node's SPA_TOKEN_SECRET / --data-dir")
	}
	if o.Scenario == ScenarioWebhooks {
		return runWebhooks(ctx, o, c)
	}
	p, err := newPlan(o)
	if err != nil {
		return nil, fmt.Errorf("loadgen: plan: %w", err)
	}
	g := &gen{o: o, c: c, p: p}
	// The ceiling's server answers every claim alike and keeps nothing, so
	// there is nothing to seed and no history to check.
	if o.Scenario != ScenarioCeiling {
		if err := seed(ctx, c, o, p); err != nil {
			return nil, fmt.Errorf("loadgen: seed: %w", err)
		}
		g.rec = claimcheck.NewRecorder()
	}
	res := g.drive(ctx)
	res.RunID, res.Name, res.Label, res.Scenario, res.Mode = p.runID, o.Name, o.Label, o.Scenario, o.Mode
	res.Workers, res.Duration, res.Params, res.Idempotency = o.Workers, o.Duration.Seconds(), o.Params, o.Idempotency
	if o.Mode == ModeOpen {
		res.TargetRate = o.Rate
	}
	g.check(ctx, res)
	if !res.Correct.OK {
		return res, ErrViolation
	}
	return res, nil
}

// gen is one run in progress.
type gen struct {
	o   Options
	c   *client
	p   *plan
	rec *claimcheck.Recorder // the claims' history; nil: none kept (ceiling)

	ops, wins, refusals, failures atomic.Int64
	replays, mismatches           atomic.Int64
}

// worker is one client's state: its own random source, token and memory.
type worker struct {
	id    int
	c     *client // on the worker's node
	rng   *mrand.Rand
	zipf  zipf
	token string
	st    *stats
	n     int
	past  []pastClaim // mixed: answered claims to resubmit
	churn churnState
}

type pastClaim struct {
	key    string
	body   claimBody
	status int
	id     string
}

func (g *gen) newWorker(i int) (*worker, error) {
	rng := mrand.New(mrand.NewPCG(g.o.Seed, uint64(i)))
	w := &worker{id: i, c: g.c.node(i), rng: rng, zipf: newZipf(rng, g.o.ZipfS, len(g.p.staff)), st: newStats(), token: g.o.AdminToken}
	if g.o.Mint != nil {
		tok, err := g.o.Mint(fmt.Sprintf("%s-c%d", g.p.runID, i), "client")
		if err != nil {
			return nil, err
		}
		w.token = tok
	}
	w.churn = newChurn(g.p, i, g.o.Workers)
	return w, nil
}

// drive runs the workers and returns the raw result.
func (g *gen) drive(ctx context.Context) *Result {
	workers := make([]*worker, g.o.Workers)
	for i := range workers {
		w, err := g.newWorker(i)
		if err != nil {
			return &Result{Correct: Correctness{Violations: []string{"token: " + err.Error()}}}
		}
		workers[i] = w
	}
	runCtx, cancel := context.WithTimeout(ctx, g.o.Duration+g.o.Timeout+5*time.Second)
	defer cancel()
	var cpu0 cpuSnapshot
	if len(g.o.ServerPIDs) > 0 {
		var err error
		if cpu0, err = snapshotCPU(g.o.ServerPIDs); err != nil {
			return &Result{Correct: Correctness{Violations: []string{"cpu: " + err.Error()}}}
		}
	}
	routed0, err := scrapeRouted(ctx, g.o.MetricsURLs)
	if err != nil {
		return &Result{Correct: Correctness{Violations: []string{"metrics: " + err.Error()}}}
	}
	t0 := time.Now()
	end := t0.Add(g.o.Duration)
	stopProgress := g.progress(t0)
	var next atomic.Int64
	total := arrivals(g.o.Rate, g.o.Duration)
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() {
			for runCtx.Err() == nil {
				start := time.Now()
				if g.o.Mode == ModeOpen {
					i := next.Add(1) - 1
					if i >= total {
						return
					}
					start = arrival(t0, g.o.Rate, i)
					if !sleepUntil(runCtx, start) {
						return
					}
				} else if !start.Before(end) {
					return
				}
				g.step(runCtx, w, start)
				g.ops.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(t0)
	stopProgress()
	all := newStats()
	for _, w := range workers {
		all.merge(w.st)
	}
	res := &Result{Started: t0.UTC(), Elapsed: elapsed.Seconds(), Ops: all.ops(elapsed)}
	for _, o := range res.Ops {
		res.Operations += o.Count
	}
	res.Achieved = float64(res.Operations) / elapsed.Seconds()
	res.Claims = Claims{Successes: g.wins.Load(), Refusals: g.refusals.Load(), FreeSlots: g.p.freeSlots}
	if cl, ok := res.Ops[OpClaim]; ok {
		for out, n := range cl.Outcomes {
			switch {
			case out == "201", strings.HasPrefix(out, "409 slot_taken"):
			case out == outcomeNotSent:
				res.Claims.NotSent += n
			case ambiguousOutcome(out):
				res.Claims.Ambiguous += n
			default:
				res.Claims.Other += n
			}
		}
	}
	res.Claims.Decisions = res.Claims.Successes + res.Claims.Refusals
	if len(g.o.ServerPIDs) > 0 {
		if cpu1, err := snapshotCPU(g.o.ServerPIDs); err == nil {
			res.CPU = cpu0.use(cpu1, res.Claims.Successes)
		}
	}
	if len(g.o.MetricsURLs) > 0 {
		if routed1, err := scrapeRouted(ctx, g.o.MetricsURLs); err == nil {
			res.Cluster = &Cluster{Nodes: len(g.o.MetricsURLs), Local: routed1.local - routed0.local, Forwarded: routed1.forwarded - routed0.forwarded}
		}
	}
	res.Claims.DecisionsPerSec = float64(res.Claims.Decisions) / elapsed.Seconds()
	res.Claims.SuccessesPerSec = float64(res.Claims.Successes) / elapsed.Seconds()
	return res
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// progress prints a status line every second until the returned func is
// called.
func (g *gen) progress(t0 time.Time) func() {
	if g.o.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		last, lastAt := int64(0), t0
		for {
			select {
			case <-done:
				fmt.Fprintln(g.o.Progress)
				return
			case now := <-t.C:
				ops := g.ops.Load()
				el := now.Sub(t0)
				frac := min(1, el.Seconds()/g.o.Duration.Seconds())
				bar := strings.Repeat("#", int(frac*20)) + strings.Repeat(".", 20-int(frac*20))
				fmt.Fprintf(g.o.Progress, "\r%s [%s] %3.0f%% %5.1fs ops %d (%.0f/s) won %d refused %d failed %d ",
					g.o.Name, bar, frac*100, el.Seconds(), ops, float64(ops-last)/now.Sub(lastAt).Seconds(),
					g.wins.Load(), g.refusals.Load(), g.failures.Load())
				last, lastAt = ops, now
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// step performs one operation of the scenario, timed from start.
func (g *gen) step(ctx context.Context, w *worker, start time.Time) {
	switch g.o.Scenario {
	case ScenarioHot, ScenarioCeiling:
		g.claim(ctx, w, start, 0, 0, w.rng.IntN(g.p.slots))
	case ScenarioSpread:
		g.claim(ctx, w, start, w.zipf.next(), w.rng.IntN(len(g.p.days)), w.rng.IntN(g.p.slots))
	case ScenarioMixed:
		r := w.rng.Float64()
		switch {
		case r < g.o.ReadRatio:
			g.availability(ctx, w, start)
		case r < g.o.ReadRatio+(1-g.o.ReadRatio)*0.6:
			g.claim(ctx, w, start, w.zipf.next(), w.rng.IntN(len(g.p.days)), w.rng.IntN(g.p.slots))
		case r < g.o.ReadRatio+(1-g.o.ReadRatio)*0.8:
			g.churnStep(ctx, w, start)
		default:
			g.replay(ctx, w, start)
		}
	}
}

// ambiguousOutcome: the request may or may not have taken effect.
func ambiguousOutcome(out string) bool {
	return out == "timeout" || out == "transport" || out == outcomeCancelled || strings.HasPrefix(out, "5")
}

// claim asks for one slot and records the decision for porcupine.
func (g *gen) claim(ctx context.Context, w *worker, start time.Time, staff, day, slot int) {
	staffID, at := g.p.staff[staff], g.p.start(day, slot)
	body := claimBody{ServiceID: g.p.service, StaffID: staffID, Start: at.UTC().Format(time.RFC3339)}
	if g.o.Mint == nil {
		body.ClientID = fmt.Sprintf("%s-c%d", g.p.runID, w.id)
	}
	key := ""
	if g.o.Idempotency {
		w.n++
		key = fmt.Sprintf("%s-w%d-%d", g.p.runID, w.id, w.n)
	}
	var r response
	g.decide(w.id, slotKey(staffID, at), func() claimcheck.Outcome {
		r = w.c.do(ctx, http.MethodPost, "/v1/appointments", w.token, body, key)
		return g.classify(r)
	})
	w.st.record(OpClaim, r.outcome(), time.Since(start))
	if key != "" && (r.status == 201 || r.status == 409) && g.o.Scenario == ScenarioMixed {
		w.past = append(w.past, pastClaim{key: key, body: body, status: r.status, id: r.id()})
		if len(w.past) > 64 {
			w.past = w.past[1:]
		}
	}
}

// decide sends a claim through send, recording it in the history for
// porcupine when the run keeps one.
func (g *gen) decide(worker int, slot string, send func() claimcheck.Outcome) {
	if g.rec == nil {
		send()
		return
	}
	g.rec.Claim(worker, slot, send)
}

// claimBody is the body of POST /v1/appointments (a struct: cheaper to
// encode than a map).
type claimBody struct {
	ServiceID string `json:"service_id"`
	StaffID   string `json:"staff_id"`
	Start     string `json:"start"`
	ClientID  string `json:"client_id,omitempty"`
}

func slotKey(staffID string, at time.Time) string {
	return staffID + "@" + at.UTC().Format(time.RFC3339)
}

// classify maps a claim's response to its porcupine outcome and counts it.
func (g *gen) classify(r response) claimcheck.Outcome {
	switch {
	case r.status == 201:
		g.wins.Add(1)
		return claimcheck.Won
	case r.status == 409 && r.code == "slot_taken":
		g.refusals.Add(1)
		return claimcheck.Refused
	case r.status == 200:
		// The client held that slot already and got its hold back (the
		// holder wins its own slot): the slot's state did not change, so
		// the claim is left out of the history like one never sent.
		return claimcheck.NotSent
	case r.notSent:
		return claimcheck.NotSent // left out of the history
	case ambiguousOutcome(r.outcome()):
		g.failures.Add(1)
		return claimcheck.Ambiguous
	default:
		// A 4xx other than slot_taken decided nothing: recorded as
		// ambiguous, which the checker treats as "may not have happened".
		g.failures.Add(1)
		return claimcheck.Ambiguous
	}
}

// availability reads one staff member's day.
func (g *gen) availability(ctx context.Context, w *worker, start time.Time) {
	staffID, day := g.p.staff[w.zipf.next()], g.p.days[w.rng.IntN(len(g.p.days))]
	path := fmt.Sprintf("/v1/availability?service=%s&staff=%s&from=%s&to=%s", g.p.service, staffID,
		day.UTC().Format(time.RFC3339), day.AddDate(0, 0, 1).UTC().Format(time.RFC3339))
	r := w.c.do(ctx, http.MethodGet, path, "", nil, "")
	w.st.record(OpAvailability, r.outcome(), time.Since(start))
}

// replay resubmits an earlier claim with its key: it must get the first
// answer again (same status, same appointment).
func (g *gen) replay(ctx context.Context, w *worker, start time.Time) {
	if len(w.past) == 0 {
		g.claim(ctx, w, start, w.zipf.next(), w.rng.IntN(len(g.p.days)), w.rng.IntN(g.p.slots))
		return
	}
	pc := w.past[w.rng.IntN(len(w.past))]
	r := w.c.do(ctx, http.MethodPost, "/v1/appointments", w.token, pc.body, pc.key)
	w.st.record(OpReplay, r.outcome(), time.Since(start))
	if r.notSent || ambiguousOutcome(r.outcome()) {
		return // the server could not answer; nothing to compare
	}
	g.replays.Add(1)
	if r.status != pc.status || r.id() != pc.id {
		g.mismatches.Add(1)
	}
}

// churnState: each worker owns some slots of the churn staff member and
// cycles each through hold, confirm and cancel on its own, so its claims
// never race and a refusal would be a false one. gen counts completed
// cancellations per slot, so each cycle is a fresh slot for porcupine.
type churnState struct {
	slots  []int // global slot indexes (day*slotsPerDay + slot) owned
	gen    map[int]int
	burned map[int]bool // an ambiguous answer left its state unknown
	next   int
	held   string // appointment held or confirmed now
	heldAt int
	phase  int // 0: claim next, 1: confirm, 2: cancel
}

func newChurn(p *plan, worker, workers int) churnState {
	c := churnState{gen: map[int]int{}, burned: map[int]bool{}}
	if p.churn == "" {
		return c
	}
	for s := worker; s < len(p.days)*p.slots; s += workers {
		c.slots = append(c.slots, s)
	}
	return c
}

func (g *gen) churnStep(ctx context.Context, w *worker, start time.Time) {
	c := &w.churn
	switch c.phase {
	case 0:
		var s int
		ok := false
		for range len(c.slots) {
			s = c.slots[c.next%len(c.slots)]
			c.next++
			if !c.burned[s] {
				ok = true
				break
			}
		}
		if !ok {
			g.availability(ctx, w, start)
			return
		}
		at := g.p.start(s/g.p.slots, s%g.p.slots)
		body := map[string]any{"service_id": g.p.service, "staff_id": g.p.churn, "start": at.UTC().Format(time.RFC3339)}
		if g.o.Mint == nil {
			body["client_id"] = fmt.Sprintf("%s-c%d", g.p.runID, w.id)
		}
		w.n++
		key := fmt.Sprintf("%s-w%d-%d", g.p.runID, w.id, w.n)
		var r response
		g.decide(w.id, fmt.Sprintf("%s#%d", slotKey(g.p.churn, at), c.gen[s]), func() claimcheck.Outcome {
			r = w.c.do(ctx, http.MethodPost, "/v1/appointments", w.token, body, key)
			return g.classify(r)
		})
		w.st.record(OpClaim, r.outcome(), time.Since(start))
		if r.status == 201 {
			c.held, c.heldAt, c.phase = r.id(), s, 1
		} else {
			c.burned[s] = true // taken or unknown: leave it
		}
	case 1, 2:
		kind, path := OpConfirm, "/confirm"
		if c.phase == 2 {
			kind, path = OpCancel, "/cancel"
		}
		w.n++
		r := w.c.do(ctx, http.MethodPost, "/v1/appointments/"+c.held+path, w.token, nil,
			fmt.Sprintf("%s-w%d-%d", g.p.runID, w.id, w.n))
		w.st.record(kind, r.outcome(), time.Since(start))
		switch {
		case r.status == 200 && c.phase == 1:
			c.phase = 2
		case r.status == 200:
			c.gen[c.heldAt]++
			c.held, c.phase = "", 0
		default:
			c.burned[c.heldAt] = true
			c.held, c.phase = "", 0
		}
	}
}

// check runs the correctness checks and fills res.Correct.
func (g *gen) check(ctx context.Context, res *Result) {
	if g.o.Scenario == ScenarioCeiling {
		checkCeiling(res)
		return
	}
	v := &res.Correct
	v.ClaimsChecked = g.rec.Len()
	if err := g.rec.Check(g.o.CheckTimeout); err != nil {
		v.CheckError = err.Error()
		v.Violations = append(v.Violations, "porcupine: "+err.Error())
	} else {
		v.Linearizable = true
	}
	if g.o.DatabaseURL == "" && g.o.SQLitePath == "" {
		v.Violations = append(v.Violations, "overlap check: no database given (--database-url or --data-dir)")
	} else {
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		ov, err := CountOverlaps(cctx, g.o.DatabaseURL, g.o.SQLitePath, g.p.runID+"-", time.Now())
		cancel()
		if err != nil {
			v.Violations = append(v.Violations, err.Error())
		} else {
			v.OverlapChecked, v.Overlaps, v.OverlapStaff = true, ov.Count, ov.Staff
			if ov.Count > 0 {
				v.Violations = append(v.Violations, fmt.Sprintf("database: %d live appointments overlap another of the same staff member (%s)",
					ov.Count, strings.Join(ov.Staff, ", ")))
			}
		}
	}
	v.IdempotencyReplays, v.IdempotencyMismatches = g.replays.Load(), g.mismatches.Load()
	if v.IdempotencyMismatches > 0 {
		v.Violations = append(v.Violations, fmt.Sprintf("idempotency: %d of %d replays did not get the first answer",
			v.IdempotencyMismatches, v.IdempotencyReplays))
	}
	if g.o.Scenario == ScenarioHot {
		c := res.Claims
		if c.Successes > int64(c.FreeSlots) || c.Successes+c.Ambiguous < int64(c.FreeSlots) {
			v.Violations = append(v.Violations, fmt.Sprintf("hot: %d successes (%d ambiguous) for %d free slots",
				c.Successes, c.Ambiguous, c.FreeSlots))
		}
	}
	if v.Violations == nil {
		v.Violations = []string{}
	}
	v.OK = len(v.Violations) == 0
}

// ceilingUnchecked says why a ceiling run's history and database are not
// checked.
const ceilingUnchecked = "fixed answers: no history or database to check"

// checkCeiling fills res.Correct for a ceiling run. Its answers are fixed,
// so the one check is that every claim got the fixed refusal: anything
// else means the generator measured some other server (a real node would
// answer 201 too) or the ceiling could not keep up, and its rate would not
// be the ceiling's.
func checkCeiling(res *Result) {
	v := &res.Correct
	v.Unchecked = ceilingUnchecked
	v.Violations = []string{}
	c := res.Claims
	if odd := c.Decisions - c.Refusals + c.Ambiguous + c.Other; odd > 0 {
		var outcomes map[string]int64
		if cl := res.Ops[OpClaim]; cl != nil {
			outcomes = cl.Outcomes
		}
		v.Violations = append(v.Violations, fmt.Sprintf("ceiling: %d of %d answers were not 409 slot_taken (%s)",
			odd, c.Decisions+c.Ambiguous+c.Other, outcomeList(outcomes)))
	}
	if c.Refusals == 0 {
		v.Violations = append(v.Violations, "ceiling: no claim got the fixed refusal")
	}
	v.OK = len(v.Violations) == 0
}

// SQLitePathFor is where a node with data dir dataDir keeps SQLite.
func SQLitePathFor(dataDir string) string { return filepath.Join(dataDir, "spa.db") }

// ratio formats a/b for reports; "n/a" when b is zero.
func ratio(a, b float64) string {
	if b == 0 || math.IsNaN(a/b) {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", a/b)
}
