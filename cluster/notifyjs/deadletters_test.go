package notifyjs

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"

	"github.com/spa-engine/spa/actors/auth/pii"
	"github.com/spa-engine/spa/actors/service/notify"
	"github.com/spa-engine/spa/cluster/natsserver"
	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
)

const workSubject = "spa.events.appointment_changed"

type dlqFixture struct {
	js    jetstream.JetStream
	dl    *DeadLetters
	work  jetstream.Consumer
	retry jetstream.Consumer
}

func newDLQFixture(t *testing.T) *dlqFixture {
	t.Helper()
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
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "WORK", Subjects: []string{"spa.events.>"},
		Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	keyring, err := pii.NewKeyring(pii.KeyringConfig{Primary: "k1", Keys: map[string][]byte{"k1": bytes.Repeat([]byte{7}, pii.KeyLen)}})
	if err != nil {
		t.Fatal(err)
	}
	dl, err := NewDeadLetters(ctx, js, 1, keyring)
	if err != nil {
		t.Fatal(err)
	}
	work, err := js.CreateOrUpdateConsumer(ctx, "WORK", jetstream.ConsumerConfig{Durable: "w", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	retry, err := js.CreateOrUpdateConsumer(ctx, RetryStream, jetstream.ConsumerConfig{Durable: "r", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	return &dlqFixture{js: js, dl: dl, work: work, retry: retry}
}

// next fetches one message of c.
func next(t *testing.T, c jetstream.Consumer) jetstream.Msg {
	t.Helper()
	b, err := c.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range b.Messages() {
		return m
	}
	t.Fatalf("no message: %v", b.Error())
	return nil
}

func deadOf(id, kind, class string) *notify.DeadError {
	now := time.Date(2026, 12, 6, 15, 0, 0, 0, time.UTC)
	return &notify.DeadError{Class: class, Notification: persistence.Notification{ID: id, Kind: kind, Channel: "whatsapp",
		Attempts: 6, LastError: "sender: provider unavailable: 503 for +********4567", CreatedAt: now.Add(-time.Hour), UpdatedAt: now}}
}

// TestParkListRequeue: a parked message is sealed at rest, listed with
// its class, requeued once with the original bytes and subject on the
// retry queue, and gone from the dead letters afterwards; parking the
// same message twice keeps one letter.
func TestParkListRequeue(t *testing.T) {
	f := newDLQFixture(t)
	ctx := t.Context()
	payload := []byte("the event, with a client id 01JCLIENT")
	if _, err := f.js.Publish(ctx, workSubject, payload); err != nil {
		t.Fatal(err)
	}
	msg := next(t, f.work)
	dead := deadOf("appointment:a1:confirmed:v2:whatsapp", "appointment_confirmed", notify.ClassProviderUnavailable)
	for range 2 { // a redelivery parks it again: one letter
		if err := f.dl.Park(ctx, msg, dead); err != nil {
			t.Fatal(err)
		}
	}
	letters, more, err := f.dl.List(ctx, 10)
	if err != nil || more || len(letters) != 1 {
		t.Fatalf("list %+v, more %v, %v; want one letter", letters, more, err)
	}
	l := letters[0]
	if l.NotificationID != dead.Notification.ID || l.ErrorClass != notify.ClassProviderUnavailable || l.Attempts != 6 || l.Retries != 0 ||
		l.Kind != "appointment_confirmed" || l.Channel != "whatsapp" || !l.DeadAt.Equal(dead.Notification.UpdatedAt) ||
		!l.QueuedAt.Equal(dead.Notification.CreatedAt) || l.Error != dead.Notification.LastError {
		t.Fatalf("letter %+v", l)
	}
	raw, err := f.dl.dlq.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw.Data, []byte("01JCLIENT")) {
		t.Fatal("the parked event is in the clear")
	}
	if raw.Subject != DeadSubject+"appointment_confirmed.whatsapp" {
		t.Fatalf("parked on %s", raw.Subject)
	}

	if err := f.dl.Requeue(ctx, l.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.dl.Get(ctx, l.ID); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("the requeued letter is still there: %v", err)
	}
	if err := f.dl.Requeue(ctx, l.ID); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("requeued twice: %v", err)
	}
	re := next(t, f.retry)
	if !bytes.Equal(re.Data(), payload) || re.Headers().Get(HeaderSubject) != workSubject || Retries(re.Headers()) != 1 ||
		re.Headers().Get(jetstream.MsgIDHeader) != "retry:"+dead.Notification.ID+":1" {
		t.Fatalf("requeued %q on %s with %v", re.Data(), re.Subject(), re.Headers())
	}

	// Dead again after the retry: parked under its own id, with its
	// retries and the first subject.
	if err := f.dl.Park(ctx, re, dead); err != nil {
		t.Fatal(err)
	}
	letters, _, err = f.dl.List(ctx, 10)
	if err != nil || len(letters) != 1 || letters[0].Retries != 1 {
		t.Fatalf("after the second death: %+v, %v", letters, err)
	}
	raw, err = f.dl.dlq.GetMsg(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	var m messages.DeadLetter
	if err := proto.Unmarshal(raw.Data, &m); err != nil || m.Subject != workSubject || !m.Sealed {
		t.Fatalf("second letter %+v, %v", &m, err)
	}
	if err := f.dl.Remove(ctx, letters[0].ID); err != nil {
		t.Fatal(err)
	}
	if letters, _, err := f.dl.List(ctx, 10); err != nil || len(letters) != 0 {
		t.Fatalf("after remove: %+v, %v", letters, err)
	}
	if err := f.dl.Remove(ctx, "nonsense"); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("remove nonsense: %v", err)
	}
}

// TestListLimitAndMetrics: the listing stops at its limit and says more
// are parked; the metrics count per kind and channel, with the oldest's
// age, and carry no id.
func TestListLimitAndMetrics(t *testing.T) {
	f := newDLQFixture(t)
	ctx := t.Context()
	for i, kind := range []string{"appointment_confirmed", "appointment_confirmed", "waitlist_offer"} {
		if _, err := f.js.Publish(ctx, workSubject, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		id := "appointment:a" + string(rune('1'+i)) + ":x:whatsapp"
		if err := f.dl.Park(ctx, next(t, f.work), deadOf(id, kind, notify.ClassTimeout)); err != nil {
			t.Fatal(err)
		}
	}
	letters, more, err := f.dl.List(ctx, 2)
	if err != nil || !more || len(letters) != 2 || letters[0].ID != "1" || letters[1].ID != "2" {
		t.Fatalf("limit 2: %+v, more %v, %v", letters, more, err)
	}
	m := NewDeadLetterMetrics(f.dl, nil)
	m.now = func() time.Time { return time.Now().Add(time.Hour) }
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	got, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]float64{}
	for _, mf := range got {
		for _, s := range mf.GetMetric() {
			var labels []string
			for _, lp := range s.GetLabel() {
				labels = append(labels, lp.GetName()+"="+lp.GetValue())
			}
			values[mf.GetName()+"{"+strings.Join(labels, ",")+"}"] = s.GetGauge().GetValue()
		}
	}
	if values["spa_notification_dead_letters{channel=whatsapp,kind=appointment_confirmed}"] != 2 ||
		values["spa_notification_dead_letters{channel=whatsapp,kind=waitlist_offer}"] != 1 || len(values) != 4 {
		t.Fatalf("metrics %v", values)
	}
	if age := values["spa_notification_dead_letter_oldest_seconds{channel=whatsapp,kind=waitlist_offer}"]; age < 3500 || age > 3700 {
		t.Fatalf("oldest age %v; want about an hour", age)
	}
	if n := testutil.CollectAndCount(m); n != 4 {
		t.Fatalf("%d series", n)
	}
}
