package outbox_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/spa-engine/spa/actors/testwait"
	"github.com/spa-engine/spa/cluster/natsserver"
	"github.com/spa-engine/spa/cluster/natsserver/natstest"
	"github.com/spa-engine/spa/cluster/outbox"
	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/sqlite"
)

type env struct {
	store  *sqlite.Store
	raw    *sql.DB // the same database behind the store's back
	path   string
	relay  atomic.Pointer[outbox.Relay] // receives AfterOutboxCommit
	nextID int
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{path: filepath.Join(t.TempDir(), "spa.db")}
	ctx := context.Background()
	st, err := sqlite.Open(ctx, e.path, persistence.Options{AfterOutboxCommit: func(ids []string) {
		if r := e.relay.Load(); r != nil {
			r.Committed(ids)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if e.raw, err = sql.Open("sqlite", e.path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.raw.Close() })
	e.store = st
	return e
}

// stream is a JetStream context on an embedded NATS server of the test's.
func stream(t *testing.T) jetstream.JetStream {
	t.Helper()
	js, err := natstest.Run(t).JetStream()
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// startRelay starts a relay with its own registry and stops it at cleanup.
func (e *env) startRelay(t *testing.T, js jetstream.JetStream, cfg outbox.Config) (*outbox.Relay, *prometheus.Registry) {
	t.Helper()
	return e.startRelayOn(t, e.store, js, cfg)
}

// startRelayOn is startRelay reading the outbox through store.
func (e *env) startRelayOn(t *testing.T, store persistence.Store, js jetstream.JetStream, cfg outbox.Config) (*outbox.Relay, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	r, err := outbox.New(store, js, cfg, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	e.relay.Store(r)
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r, reg
}

// appendEvents commits n events, one transaction each, and returns their ids.
func (e *env) appendEvents(t *testing.T, n int) []string {
	t.Helper()
	return e.appendEventsAt(t, n, time.Now())
}

// appendEventsAt is appendEvents with the events' time at.
func (e *env) appendEventsAt(t *testing.T, n int, at time.Time) []string {
	t.Helper()
	var ids []string
	for range n {
		e.nextID++
		ev, err := persistence.NewOutboxEvent("studio/default", "req-1", "tester",
			&messages.StudioUpdated{StudioId: "default", Version: int64(e.nextID), Name: "Studio"}, at)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.store.InTx(context.Background(), func(tx persistence.Tx) error {
			return tx.OutboxAppend(context.Background(), ev)
		}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ev.ID)
	}
	return ids
}

// counts returns the store's pending events and every row of the outbox
// table, read behind the store's back: a published event must leave the
// table, not stay in it marked.
func (e *env) counts(t *testing.T) (pending, rows int) {
	t.Helper()
	err := e.store.InTx(context.Background(), func(tx persistence.Tx) error {
		var err error
		pending, err = tx.OutboxCount(context.Background())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.raw.QueryRow(`SELECT COUNT(*) FROM outbox`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	return pending, rows
}

// streamIDs returns the Nats-Msg-Id of every message in the stream, in
// stream order, checking headers and the envelope on the way.
func streamIDs(t *testing.T, js jetstream.JetStream) []string {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, outbox.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("get msg %d: %v", seq, err)
		}
		id := m.Header.Get(jetstream.MsgIDHeader)
		if got := m.Header.Get(outbox.HeaderEventType); !strings.HasSuffix(got, "StudioUpdated") {
			t.Fatalf("msg %d: %s = %q", seq, outbox.HeaderEventType, got)
		}
		var env messages.Event
		if err := proto.Unmarshal(m.Data, &env); err != nil {
			t.Fatalf("msg %d: %v", seq, err)
		}
		if env.GetId() != id {
			t.Fatalf("msg %d: envelope id %q != Nats-Msg-Id %q", seq, env.GetId(), id)
		}
		ids = append(ids, id)
	}
	return ids
}

func metric(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		switch {
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue()
		case m.GetHistogram() != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return 0
}

func equalIDs(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("stream ids (%d) differ from outbox ids (%d)\n got: %v\nwant: %v", len(got), len(want), got, want)
	}
}

func TestPublishesInOrderAndDeletes(t *testing.T) {
	e := newEnv(t)
	ids := e.appendEvents(t, 250) // several batches
	js := stream(t)
	_, reg := e.startRelay(t, js, outbox.Config{BatchSize: 100, MaxInFlight: 16})

	testwait.For(t, 10*time.Second, "all events published", func() bool { p, _ := e.counts(t); return p == 0 })
	equalIDs(t, streamIDs(t, js), ids)
	if _, rows := e.counts(t); rows != 0 {
		t.Fatalf("%d rows left in the outbox, want 0 (published events are deleted)", rows)
	}
	if v := metric(t, reg, "spa_outbox_published_total"); v != 250 {
		t.Fatalf("spa_outbox_published_total = %v", v)
	}
	if v := metric(t, reg, "spa_outbox_duplicates_total"); v != 0 {
		t.Fatalf("spa_outbox_duplicates_total = %v, want 0", v)
	}
	if v := metric(t, reg, "spa_outbox_publish_seconds"); v != 250 {
		t.Fatalf("spa_outbox_publish_seconds count = %v", v)
	}
	testwait.For(t, 2*time.Second, "pending gauge 0", func() bool { return metric(t, reg, "spa_outbox_pending") == 0 })
	if v := metric(t, reg, "spa_outbox_publish_errors_total"); v != 0 {
		t.Fatalf("spa_outbox_publish_errors_total = %v", v)
	}
}

func TestRestartContinuesWithoutLoss(t *testing.T) {
	e := newEnv(t)
	js := stream(t)
	r1, _ := e.startRelay(t, js, outbox.Config{PollInterval: 20 * time.Millisecond})
	ids := e.appendEvents(t, 30)
	testwait.For(t, 5*time.Second, "first events published", func() bool { p, _ := e.counts(t); return p == 0 })
	// Stop while events keep arriving; whatever is left must be picked up.
	done := make(chan []string)
	go func() {
		var more []string
		for range 30 {
			e.nextID++
			ev, _ := persistence.NewOutboxEvent("studio/default", "", "tester", &messages.StudioUpdated{Version: int64(e.nextID)}, time.Now())
			if err := e.store.InTx(context.Background(), func(tx persistence.Tx) error {
				return tx.OutboxAppend(context.Background(), ev)
			}); err == nil {
				more = append(more, ev.ID)
			}
		}
		done <- more
	}()
	r1.Stop()
	r1.Stop() // idempotent
	ids = append(ids, <-done...)

	e.startRelay(t, js, outbox.Config{PollInterval: 20 * time.Millisecond})
	testwait.For(t, 5*time.Second, "all events published", func() bool { p, _ := e.counts(t); return p == 0 })
	equalIDs(t, streamIDs(t, js), ids)
}

func TestCrashBetweenAckAndDelete(t *testing.T) {
	e := newEnv(t)
	ids := e.appendEvents(t, 10)
	js := stream(t)
	ctx := context.Background()
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: outbox.StreamName, Subjects: []string{outbox.SubjectPrefix + ">"},
		Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute,
	}); err != nil {
		t.Fatal(err)
	}
	// A previous relay published the first half and died before deleting.
	var pending []persistence.OutboxEvent
	if err := e.store.InTx(ctx, func(tx persistence.Tx) error {
		var err error
		pending, err = tx.OutboxPending(ctx, 100)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for _, ev := range pending[:5] {
		msg := nats.NewMsg(ev.Subject)
		msg.Data = ev.Payload
		msg.Header.Set(jetstream.MsgIDHeader, ev.ID)
		msg.Header.Set(outbox.HeaderEventType, ev.Type)
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}

	r, reg1 := e.startRelay(t, js, outbox.Config{PollInterval: 20 * time.Millisecond})
	testwait.For(t, 5*time.Second, "all events published", func() bool { p, _ := e.counts(t); return p == 0 })
	equalIDs(t, streamIDs(t, js), ids)
	if v := metric(t, reg1, "spa_outbox_duplicates_total"); v != 5 {
		t.Fatalf("spa_outbox_duplicates_total = %v, want 5 (the half published before the crash)", v)
	}

	// Same crash after a whole run: put every event back behind the
	// relay's back (as if none of the deletes had committed) and let a new
	// relay republish.
	r.Stop()
	if err := e.store.InTx(ctx, func(tx persistence.Tx) error {
		for _, ev := range pending {
			if err := tx.OutboxAppend(ctx, ev); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if p, _ := e.counts(t); p != 10 {
		t.Fatalf("pending after reset = %d", p)
	}
	_, reg := e.startRelay(t, js, outbox.Config{PollInterval: 20 * time.Millisecond})
	testwait.For(t, 5*time.Second, "republished events deleted", func() bool { p, _ := e.counts(t); return p == 0 })
	equalIDs(t, streamIDs(t, js), ids)
	if v := metric(t, reg, "spa_outbox_published_total"); v != 10 {
		t.Fatalf("spa_outbox_published_total = %v, want 10 (duplicates count as acked)", v)
	}
	if v := metric(t, reg, "spa_outbox_duplicates_total"); v != 10 {
		t.Fatalf("spa_outbox_duplicates_total = %v, want 10", v)
	}
}

func TestNATSDownThenBack(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	srv1 := natstest.RunWith(t, natsserver.Config{StoreDir: dir})
	url := srv1.ClientURL()
	port := url[strings.LastIndex(url, ":")+1:]
	var portN int
	if _, err := fmt.Sscan(port, &portN); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	_, reg := e.startRelay(t, js, outbox.Config{
		PollInterval: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, PublishTimeout: 300 * time.Millisecond,
	})
	ids := e.appendEvents(t, 5)
	testwait.For(t, 5*time.Second, "first events published", func() bool { p, _ := e.counts(t); return p == 0 })

	srv1.Stop()
	ids = append(ids, e.appendEvents(t, 20)...)
	testwait.For(t, 5*time.Second, "publish errors", func() bool { return metric(t, reg, "spa_outbox_publish_errors_total") > 0 })
	if p, _ := e.counts(t); p != 20 {
		t.Fatalf("pending while NATS is down = %d, want 20", p)
	}
	testwait.For(t, 5*time.Second, "spa_outbox_pending 20", func() bool { return metric(t, reg, "spa_outbox_pending") == 20 })
	// The oldest unpublished event ages while NATS is down.
	testwait.For(t, 5*time.Second, "spa_outbox_oldest_pending_seconds growing", func() bool {
		return metric(t, reg, "spa_outbox_oldest_pending_seconds") > 0.05
	})

	natstest.RunWith(t, natsserver.Config{Port: portN, StoreDir: dir})
	testwait.For(t, 10*time.Second, "all events published after NATS is back", func() bool { p, _ := e.counts(t); return p == 0 })
	equalIDs(t, streamIDs(t, js), ids)
	testwait.For(t, 2*time.Second, "no age once all is published", func() bool { return metric(t, reg, "spa_outbox_oldest_pending_seconds") == 0 })
}

func TestNotifySkipsPollWait(t *testing.T) {
	e := newEnv(t)
	js := stream(t)
	e.startRelay(t, js, outbox.Config{PollInterval: time.Hour})
	ids := e.appendEvents(t, 3) // each commit calls AfterOutboxCommit -> Notify
	testwait.For(t, 3*time.Second, "events published via Notify", func() bool { p, _ := e.counts(t); return p == 0 })
	equalIDs(t, streamIDs(t, js), ids)
}

func TestStopBeforeStart(t *testing.T) {
	e := newEnv(t)
	js := stream(t)
	r, err := outbox.New(e.store, js, outbox.Config{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Stop()
	r.Stop()
	if err := r.Start(context.Background()); err == nil {
		t.Fatal("Start after Stop succeeded")
	}
}

// countingStore counts the transactions run through it, and the reads
// of every node's pending events among them.
type countingStore struct {
	persistence.Store
	txs, surveys atomic.Int64
}

func (s *countingStore) InTx(ctx context.Context, fn func(persistence.Tx) error) error {
	s.txs.Add(1)
	return s.Store.InTx(ctx, func(tx persistence.Tx) error { return fn(countingTx{tx, s}) })
}

type countingTx struct {
	persistence.Tx
	s *countingStore
}

func (t countingTx) OutboxPending(ctx context.Context, limit int) ([]persistence.OutboxEvent, error) {
	t.s.surveys.Add(1)
	return t.Tx.OutboxPending(ctx, limit)
}

// Commits arriving every few milliseconds share the relay's passes: a
// pass lingers, then deletes what it published and reads what came
// meanwhile in one transaction. A relay passing once per commit, with a
// transaction to read and another to delete, runs two per event here.
func TestCommitsShareTheRelaysTransactions(t *testing.T) {
	e := newEnv(t)
	js := stream(t)
	counted := &countingStore{Store: e.store}
	const linger = 50 * time.Millisecond
	e.startRelayOn(t, counted, js, outbox.Config{PollInterval: time.Hour, Linger: linger})

	start := time.Now()
	var ids []string
	for range 40 {
		ids = append(ids, e.appendEvents(t, 1)...) // each commit notifies the relay
		time.Sleep(5 * time.Millisecond)
	}
	testwait.For(t, 5*time.Second, "all events published and deleted", func() bool { p, _ := e.counts(t); return p == 0 })
	elapsed := time.Since(start)
	equalIDs(t, streamIDs(t, js), ids)
	if got, most := counted.txs.Load(), int64(elapsed/linger)+3; got > most {
		t.Fatalf("the relay ran %d transactions for 40 commits in %v, want at most %d (one per linger)", got, elapsed.Round(time.Millisecond), most)
	}
}

// node is one of two processes sharing an outbox: its own store on the
// same database file, reporting its commits to its own shared relay.
func (e *env) node(t *testing.T, js jetstream.JetStream, cfg outbox.Config) (*env, *prometheus.Registry, *countingStore) {
	t.Helper()
	n := &env{raw: e.raw, path: e.path}
	st, err := sqlite.Open(context.Background(), e.path, persistence.Options{AfterOutboxCommit: func(ids []string) {
		if r := n.relay.Load(); r != nil {
			r.Committed(ids)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	n.store = st
	cfg.Shared = true
	counted := &countingStore{Store: st}
	_, reg := n.startRelayOn(t, counted, js, cfg)
	return n, reg, counted
}

// Two nodes' relays read one outbox: each publishes its own node's events
// and leaves the other's alone, so JetStream sees each event once. Every
// relay publishing every pending event made most publishes duplicates.
func TestSharedRelaysPublishTheirOwnEvents(t *testing.T) {
	e := newEnv(t)
	js := stream(t)
	cfg := outbox.Config{PollInterval: 5 * time.Millisecond, Grace: time.Minute}
	a, regA, readsA := e.node(t, js, cfg)
	b, regB, _ := e.node(t, js, cfg)
	var ids, ofA []string
	for i := range 60 {
		n := a
		if i%2 == 1 {
			n = b
		}
		n.nextID = i
		id := n.appendEvents(t, 1)
		if n == a {
			ofA = append(ofA, id...)
		}
		ids = append(ids, id...)
	}
	testwait.For(t, 10*time.Second, "all events published and deleted", func() bool { p, _ := e.counts(t); return p == 0 })
	// Each id once; each node's in its own order (the two interleave).
	got := streamIDs(t, js)
	var gotOfA []string
	for _, id := range got {
		if slices.Contains(ofA, id) {
			gotOfA = append(gotOfA, id)
		}
	}
	equalIDs(t, gotOfA, ofA)
	slices.Sort(got)
	equalIDs(t, got, ids)
	for name, reg := range map[string]*prometheus.Registry{"a": regA, "b": regB} {
		if v := metric(t, reg, "spa_outbox_duplicates_total"); v != 0 {
			t.Errorf("relay %s: spa_outbox_duplicates_total = %v, want 0", name, v)
		}
		if v := metric(t, reg, "spa_outbox_published_total"); v != 30 {
			t.Errorf("relay %s: spa_outbox_published_total = %v, want its node's 30", name, v)
		}
	}
	// Its own events it read by id: every node's pending events only on
	// the first pass (the next survey is half a grace, 30 s, away).
	if n := readsA.surveys.Load(); n > 1 {
		t.Errorf("relay a read every node's pending events %d times in %d transactions, want once", n, readsA.txs.Load())
	}
}

// Events whose node's relay is gone are orphans: another shared relay
// publishes them a grace after it first read them, not before, even when
// the events' own time is long past (a lapse's event carries the hold's
// expiry; another node's clock may lag).
func TestSharedRelayPublishesOrphansAfterTheGrace(t *testing.T) {
	e := newEnv(t)
	js := stream(t)
	const grace = 700 * time.Millisecond
	e.node(t, js, outbox.Config{PollInterval: 5 * time.Millisecond, Grace: grace})
	committed := time.Now()
	ids := e.appendEventsAt(t, 5, committed.Add(-time.Hour)) // through a store whose node has no relay
	time.Sleep(grace / 2)
	if p, _ := e.counts(t); p != 5 {
		t.Fatalf("%d events pending halfway through the grace, want all 5 (another node's)", p)
	}
	testwait.For(t, 10*time.Second, "orphans published", func() bool { p, _ := e.counts(t); return p == 0 })
	if waited := time.Since(committed); waited < grace {
		t.Fatalf("orphans published after %v, before the grace of %v", waited, grace)
	}
	equalIDs(t, streamIDs(t, js), ids)
}

// An own event another relay deleted (it published it as an orphan) is
// forgotten after two graces: the relay does not read its id on every poll
// from then on, only surveys every half grace.
func TestSharedRelayForgetsOwnEventsDeletedElsewhere(t *testing.T) {
	e := newEnv(t)
	js := stream(t)
	const grace = 200 * time.Millisecond
	n, _, reads := e.node(t, js, outbox.Config{PollInterval: 5 * time.Millisecond, Grace: grace})
	n.relay.Load().Committed([]string{"01JZZZZZZZZZZZZZZZZZZZZZZZ"}) // reported, then deleted by another relay
	time.Sleep(4 * grace)
	before, start := reads.txs.Load(), time.Now()
	time.Sleep(5 * grace)
	got, most := reads.txs.Load()-before, int64(time.Since(start)/(grace/2))+2
	if got > most {
		t.Fatalf("%d transactions in %v with nothing to publish, want at most %d (a survey every half grace)", got, time.Since(start).Round(time.Millisecond), most)
	}
}
