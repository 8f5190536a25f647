package jsmetrics

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/spa-engine/spa/cluster/natsserver"
)

func TestCollector(t *testing.T) {
	ctx := t.Context()
	ns, err := natsserver.Start(ctx, natsserver.Config{Port: -1, StoreDir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Stop)
	js, err := ns.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "EV", Subjects: []string{"ev.>"},
		Storage: jetstream.MemoryStorage, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for _, subj := range []string{"ev.a", "ev.b", "ev.a", "ev.a"} {
		if _, err := js.Publish(ctx, subj, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "notify", FilterSubject: "ev.a",
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	// An ephemeral consumer: left out.
	if _, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{AckPolicy: jetstream.AckNonePolicy}); err != nil {
		t.Fatal(err)
	}
	// Two of the three ev.a delivered, none acked.
	batch, err := cons.Fetch(2, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var got []jetstream.Msg
	for m := range batch.Messages() {
		got = append(got, m)
	}
	if len(got) != 2 {
		t.Fatalf("fetched %d messages, want 2", len(got))
	}

	c := New(js, 5*time.Second, nil)
	c.now = func() time.Time { return time.Now().Add(time.Hour) }
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	want := `
# HELP spa_jetstream_consumer_ack_pending_messages Messages delivered to the durable consumer and not yet acknowledged.
# TYPE spa_jetstream_consumer_ack_pending_messages gauge
spa_jetstream_consumer_ack_pending_messages{consumer="notify",stream="EV"} 2
# HELP spa_jetstream_consumer_pending_messages Messages of the stream the durable consumer has not yet delivered (its lag; aggregate with max).
# TYPE spa_jetstream_consumer_pending_messages gauge
spa_jetstream_consumer_pending_messages{consumer="notify",stream="EV"} 1
# HELP spa_jetstream_stream_messages Messages stored in the stream (the leader's count: aggregate with max).
# TYPE spa_jetstream_stream_messages gauge
spa_jetstream_stream_messages{stream="EV"} 4
# HELP spa_jetstream_stream_max_bytes The stream's byte limit (-1: none).
# TYPE spa_jetstream_stream_max_bytes gauge
spa_jetstream_stream_max_bytes{stream="EV"} 1.048576e+06
# HELP spa_jetstream_collect_errors_total Scrapes whose JetStream listing failed or timed out (the series above are then partial).
# TYPE spa_jetstream_collect_errors_total counter
spa_jetstream_collect_errors_total 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "spa_jetstream_consumer_ack_pending_messages",
		"spa_jetstream_consumer_pending_messages", "spa_jetstream_stream_messages", "spa_jetstream_stream_max_bytes",
		"spa_jetstream_collect_errors_total"); err != nil {
		t.Fatal(err)
	}
	age := oldest(t, reg)
	if age < 3590 || age > 3700 {
		t.Fatalf("oldest unacked = %vs, want about an hour (the clock is an hour ahead)", age)
	}

	// Everything acked and delivered: nothing pending, no age.
	for _, m := range got {
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
	}
	last, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := last.DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	if age := oldest(t, reg); age != 0 {
		t.Fatalf("oldest unacked = %vs with everything acked, want 0", age)
	}
	if n := testutil.CollectAndCount(c, "spa_jetstream_consumer_pending_messages"); n != 1 {
		t.Fatalf("%d consumer series, want 1 (the ephemeral consumer is left out)", n)
	}
}

func oldest(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "spa_jetstream_consumer_oldest_unacked_seconds" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("no spa_jetstream_consumer_oldest_unacked_seconds")
	return 0
}
