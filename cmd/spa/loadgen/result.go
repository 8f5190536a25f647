package loadgen

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Operation kinds, the keys of Result.Ops.
const (
	OpClaim        = "claim"        // POST /v1/appointments, a decision on a slot
	OpAvailability = "availability" // GET /v1/availability
	OpCancel       = "cancel"       // POST /v1/appointments/:id/cancel
	OpConfirm      = "confirm"      // POST /v1/appointments/:id/confirm
	OpReplay       = "replay"       // a claim resent with its Idempotency-Key
	OpWebhook      = "webhook"      // POST /v1/webhooks/wompi, one signed event
)

// Latency is a distribution summary in milliseconds.
type Latency struct {
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	P999 float64 `json:"p99_9_ms"`
	Max  float64 `json:"max_ms"`
	Mean float64 `json:"mean_ms"`
}

// OpStats summarises one kind of operation.
type OpStats struct {
	Count     int64   `json:"count"`
	PerSecond float64 `json:"per_second"`
	// Outcomes counts results by "<status> <error code>" (e.g. "201",
	// "409 slot_taken", "503 unavailable") or "timeout" / "transport".
	Outcomes map[string]int64 `json:"outcomes"`
	Latency  Latency          `json:"latency"`
}

// Claims summarises the decisions on slots.
type Claims struct {
	Decisions       int64   `json:"decisions"` // successes + refusals
	Successes       int64   `json:"successes"`
	Refusals        int64   `json:"refusals"`
	Ambiguous       int64   `json:"ambiguous"` // 5xx, timeouts, transport errors, cancelled in flight
	NotSent         int64   `json:"not_sent"`  // never left the generator: no effect, not in the history
	Other           int64   `json:"other"`     // other 4xx: no decision
	DecisionsPerSec float64 `json:"decisions_per_second"`
	SuccessesPerSec float64 `json:"successes_per_second"`
	// FreeSlots is how many slots were free when the run began (hot only).
	FreeSlots int `json:"free_slots,omitempty"`
}

// Correctness is the verdict of the run's checks.
type Correctness struct {
	ClaimsChecked int    `json:"claims_checked"`
	Linearizable  bool   `json:"linearizable"`
	CheckError    string `json:"check_error,omitempty"`
	// OverlapChecked is false when the database could not be queried.
	OverlapChecked        bool     `json:"overlap_checked"`
	Overlaps              int      `json:"overlaps"`
	OverlapStaff          []string `json:"overlap_staff,omitempty"`
	IdempotencyReplays    int64    `json:"idempotency_replays"`
	IdempotencyMismatches int64    `json:"idempotency_mismatches"`
	// Unchecked, when set, says why the history and the database were not
	// checked (the ceiling's answers are fixed: there is nothing to check).
	Unchecked string `json:"unchecked,omitempty"`
	// Violations lists every failed check; empty means the run is correct.
	Violations []string `json:"violations"`
	OK         bool     `json:"ok"`
}

// Result is what a run writes as JSON.
type Result struct {
	Name     string `json:"name"`  // run name, e.g. "hot" or "sweep-800"
	Label    string `json:"label"` // e.g. the engine under test
	RunID    string `json:"run_id"`
	Scenario string `json:"scenario"`
	Mode     string `json:"mode"`
	// Idempotency: every claim carried a fresh Idempotency-Key.
	Idempotency bool                `json:"idempotency"`
	Workers     int                 `json:"workers"`
	TargetRate  float64             `json:"target_rate,omitempty"` // open loop, operations per second
	Duration    float64             `json:"duration_seconds"`      // as configured
	Elapsed     float64             `json:"elapsed_seconds"`       // as measured
	Started     time.Time           `json:"started"`
	Operations  int64               `json:"operations"`
	Achieved    float64             `json:"achieved_rate"` // operations per second
	Ops         map[string]*OpStats `json:"ops"`
	Claims      Claims              `json:"claims"`
	Correct     Correctness         `json:"correctness"`
	Params      map[string]string   `json:"params"`
	// Payments is the webhooks scenario's burst and its check (nil for
	// the booking scenarios).
	Payments *Payments `json:"payments,omitempty"`
	// Notifications is the notifications fan-out's summary (nil for the
	// loadgen's own runs).
	Notifications *Notifications `json:"notifications,omitempty"`
	// Bot is the WhatsApp bot's load summary (nil for the loadgen's own
	// runs).
	Bot *Bot `json:"bot,omitempty"`
	// Cluster is what the nodes' routers did (with --metrics-url).
	Cluster *Cluster `json:"cluster,omitempty"`
	// CPU is what the server and the database spent (with --server-pid).
	CPU *CPUUse `json:"cpu,omitempty"`
	// Repeats lists every try of a run repeated with --repeat, in order;
	// the result itself is the median try.
	Repeats []Repeat `json:"repeats,omitempty"`
}

// Payments summarises a webhooks run: a burst of signed events for
// intents paid once each at the generator's Wompi, and what the database
// holds afterwards.
type Payments struct {
	Intents    int `json:"intents"`      // payment intents seeded, each approved once at Wompi
	Events     int `json:"events"`       // events posted in the burst
	Duplicates int `json:"duplicates"`   // byte-identical copies of another event of the burst
	OutOfOrder int `json:"out_of_order"` // stale PENDING updates, signed older than their approval
	// Applied counts answers whose outcome was "applied": at most one per
	// intent, fewer if reconciliation got to some first.
	Applied       int64         `json:"applied"`
	AppliesPerSec float64       `json:"applies_per_second"`
	EventsPerSec  float64       `json:"events_per_second"`
	NotOK         int64         `json:"not_ok"` // answers other than 200: every event was authentic
	Check         PaymentsCheck `json:"check"`
}

// PaymentsCheck is what the database says of the run's intents after the
// burst.
type PaymentsCheck struct {
	Checked bool `json:"checked"` // the database answered
	Intents int  `json:"intents"` // the run's intents found
	// ApprovedOnce: approved, one approval posted to the ledger, the order
	// paid by one transition.
	ApprovedOnce int `json:"approved_once"`
	// DoubleApplies: more than one approval posted, or the order marked
	// paid more than once.
	DoubleApplies int `json:"double_applies"`
	NotApplied    int `json:"not_applied"` // no approval posted, or the intent or order not approved/paid
	Unbalanced    int `json:"unbalanced"`  // intents whose ledger lines do not sum to zero
	// LedgerSumMinor is the sum of every ledger line of the run's intents
	// (minor units): zero for a double-entry journal.
	LedgerSumMinor int64 `json:"ledger_sum_minor"`
}

// stats accumulates one worker's observations; merged at the end.
type stats struct {
	hist     map[string]*hdrhistogram.Histogram
	outcomes map[string]map[string]int64
}

func newStats() *stats {
	return &stats{hist: map[string]*hdrhistogram.Histogram{}, outcomes: map[string]map[string]int64{}}
}

// newHist records 1µs .. 2 minutes at 3 significant digits.
func newHist() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, int64(2*time.Minute/time.Microsecond), 3)
}

func (s *stats) record(kind, outcome string, d time.Duration) {
	h, ok := s.hist[kind]
	if !ok {
		h = newHist()
		s.hist[kind] = h
		s.outcomes[kind] = map[string]int64{}
	}
	_ = h.RecordValue(min(max(1, d.Microseconds()), h.HighestTrackableValue())) // clamped to the range
	s.outcomes[kind][outcome]++
}

func (s *stats) merge(o *stats) {
	for k, h := range o.hist {
		if _, ok := s.hist[k]; !ok {
			s.hist[k] = newHist()
			s.outcomes[k] = map[string]int64{}
		}
		s.hist[k].Merge(h)
		for out, n := range o.outcomes[k] {
			s.outcomes[k][out] += n
		}
	}
}

func latencyOf(h *hdrhistogram.Histogram) Latency {
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return Latency{P50: ms(h.ValueAtQuantile(50)), P90: ms(h.ValueAtQuantile(90)), P99: ms(h.ValueAtQuantile(99)),
		P999: ms(h.ValueAtQuantile(99.9)), Max: ms(h.Max()), Mean: h.Mean() / 1000}
}

// ops turns merged stats into the result's per-kind summaries.
func (s *stats) ops(elapsed time.Duration) map[string]*OpStats {
	out := map[string]*OpStats{}
	for k, h := range s.hist {
		o := &OpStats{Count: h.TotalCount(), Outcomes: s.outcomes[k], Latency: latencyOf(h)}
		if elapsed > 0 {
			o.PerSecond = float64(o.Count) / elapsed.Seconds()
		}
		out[k] = o
	}
	return out
}

// WriteMarkdown renders the run's summary.
func (r *Result) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	title := r.Name
	if r.Label != "" {
		title = r.Label + " / " + r.Name
	}
	fmt.Fprintf(&b, "## Load run %s\n\n", title)
	if r.Payments != nil {
		r.writePaymentsMarkdown(&b)
		_, err := io.WriteString(w, b.String())
		return err
	}
	fmt.Fprintf(&b, "Scenario `%s`, %s loop, %d workers, claims %s", r.Scenario, r.Mode, r.Workers, keysOf(r))
	if r.Mode == ModeOpen {
		fmt.Fprintf(&b, ", target %.0f ops/s, achieved %.1f ops/s", r.TargetRate, r.Achieved)
	} else {
		fmt.Fprintf(&b, ", achieved %.1f ops/s", r.Achieved)
	}
	fmt.Fprintf(&b, ", %.1fs (run %s).\n\n", r.Elapsed, r.RunID)
	if len(r.Repeats) > 1 {
		fmt.Fprintf(&b, "The median of %d tries (headline rates %s); the figures below are that try's.\n\n", len(r.Repeats), repeatList(r.Repeats))
	}
	b.WriteString("| operation | count | per second | p50 ms | p99 ms | p99.9 ms | max ms | outcomes |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---|\n")
	for _, k := range slices.Sorted(maps.Keys(r.Ops)) {
		o := r.Ops[k]
		fmt.Fprintf(&b, "| %s | %d | %.1f | %.2f | %.2f | %.2f | %.2f | %s |\n", k, o.Count, o.PerSecond,
			o.Latency.P50, o.Latency.P99, o.Latency.P999, o.Latency.Max, outcomeList(o.Outcomes))
	}
	c := r.Claims
	fmt.Fprintf(&b, "\nClaims: %d decisions (%.1f/s): %d successes (%.1f/s), %d refusals, %d ambiguous, %d other.",
		c.Decisions, c.DecisionsPerSec, c.Successes, c.SuccessesPerSec, c.Refusals, c.Ambiguous, c.Other)
	if c.NotSent > 0 {
		fmt.Fprintf(&b, " Not sent (no effect, not checked): %d.", c.NotSent)
	}
	if c.FreeSlots > 0 {
		fmt.Fprintf(&b, " Free slots at start: %d.", c.FreeSlots)
	}
	if u := r.CPU; u != nil {
		fmt.Fprintf(&b, "\nCPU: server %.2f s, PostgreSQL %.2f s: %.3f ms per success.", u.ServerSeconds, u.DatabaseSeconds, u.PerSuccessMs)
	}
	b.WriteString("\n\n")
	v := r.Correct
	switch {
	case v.OK && v.Unchecked != "":
		fmt.Fprintf(&b, "**Correctness: PASS** — every claim got the fixed refusal (%s).\n", v.Unchecked)
	case v.OK:
		fmt.Fprintf(&b, "**Correctness: PASS** — %d claims linearizable (porcupine), %d overlapping live appointments, %d/%d idempotent replays mismatched.\n",
			v.ClaimsChecked, v.Overlaps, v.IdempotencyMismatches, v.IdempotencyReplays)
	default:
		fmt.Fprintf(&b, "**Correctness: FAIL**\n\n")
		for _, s := range v.Violations {
			fmt.Fprintf(&b, "- %s\n", s)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// keysOf says whether r's claims carried an Idempotency-Key.
func keysOf(r *Result) string {
	if r.Idempotency {
		return "keyed"
	}
	return "unkeyed"
}

// outcomeList formats outcomes most frequent first.
func outcomeList(m map[string]int64) string {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(m[b], m[a]), cmp.Compare(a, b)) })
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// writePaymentsMarkdown is the summary of a webhooks run.
func (r *Result) writePaymentsMarkdown(b *strings.Builder) {
	p := r.Payments
	fmt.Fprintf(b, "Scenario `%s`: a burst of %d signed events (%d exact duplicates, %d stale PENDING updates) for %d intents, %d workers, %.1fs (run %s).\n\n",
		r.Scenario, p.Events, p.Duplicates, p.OutOfOrder, p.Intents, r.Workers, r.Elapsed, r.RunID)
	if w := r.Ops[OpWebhook]; w != nil {
		b.WriteString("| operation | count | per second | p50 ms | p99 ms | p99.9 ms | max ms | outcomes |\n|---|---:|---:|---:|---:|---:|---:|---|\n")
		fmt.Fprintf(b, "| %s | %d | %.1f | %.2f | %.2f | %.2f | %.2f | %s |\n\n", OpWebhook, w.Count, w.PerSecond,
			w.Latency.P50, w.Latency.P99, w.Latency.P999, w.Latency.Max, outcomeList(w.Outcomes))
	}
	fmt.Fprintf(b, "Applies: %d (%.1f/s); events answered: %.1f/s; answers other than 200: %d.\n\n", p.Applied, p.AppliesPerSec, p.EventsPerSec, p.NotOK)
	c := p.Check
	if r.Correct.OK {
		fmt.Fprintf(b, "**Correctness: PASS** — %d intents approved exactly once, %d double applies, ledger sum %d.\n", c.ApprovedOnce, c.DoubleApplies, c.LedgerSumMinor)
		return
	}
	b.WriteString("**Correctness: FAIL**\n\n")
	for _, s := range r.Correct.Violations {
		fmt.Fprintf(b, "- %s\n", s)
	}
}
