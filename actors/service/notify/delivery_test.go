package notify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/spa-engine/spa/actors/providers/inbound"
	"github.com/spa-engine/spa/actors/providers/sender"
	"github.com/spa-engine/spa/persistence"
)

// trackingSender is the fake sender giving each accepted message an id,
// as the WhatsApp and Twilio clients do.
type trackingSender struct{ *fakeSender }

func (s trackingSender) SendTracked(ctx context.Context, m sender.Message) (string, error) {
	if err := s.fakeSender.Send(ctx, m); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s.%d", m.Channel, len(s.messages())), nil
}

// fakeChecks records the delivery checks scheduled and fired.
type fakeChecks struct {
	mu        sync.Mutex
	scheduled map[string]time.Time
	causes    map[string]Cause
	fired     []string
}

func (c *fakeChecks) Schedule(_ context.Context, id string, cause Cause, at time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.scheduled[id], c.causes[id] = at, cause
	return nil
}

func (c *fakeChecks) Fire(_ context.Context, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fired = append(c.fired, id)
	return nil
}

// deliveryFixture is the fixture with a tracking sender, delivery checks
// and metrics.
type deliveryFixture struct {
	*fixture
	checks  *fakeChecks
	metrics *Metrics
	cause   Cause
}

func newDeliveryFixture(t *testing.T, open func(*testing.T, persistence.Options) persistence.Store) *deliveryFixture {
	f := &deliveryFixture{fixture: newFixture(t, open, Config{}),
		checks: &fakeChecks{scheduled: map[string]time.Time{}, causes: map[string]Cause{}},
		cause:  Cause{Subject: "spa.events.appointment_changed", Data: []byte("the event")}}
	var err error
	if f.metrics, err = NewMetrics(prometheus.NewRegistry()); err != nil {
		t.Fatal(err)
	}
	d := f.svc.deps
	d.Sender, d.Checks, d.Metrics = trackingSender{f.sender}, f.checks, f.metrics
	if f.svc, err = New(d, f.svc.cfg); err != nil {
		t.Fatal(err)
	}
	return f
}

// handle hands the confirmation in, as the consumer does, with its cause.
func (f *deliveryFixture) handle() {
	f.t.Helper()
	if err := f.svc.Handle(WithCause(f.t.Context(), f.cause), f.confirmed()); err != nil {
		f.t.Fatalf("Handle: %v", err)
	}
}

func (f *deliveryFixture) get(id string) persistence.Notification {
	f.t.Helper()
	var n persistence.Notification
	if err := f.store.InTx(f.t.Context(), func(tx persistence.Tx) (err error) {
		n, err = tx.NotificationGet(f.t.Context(), id)
		return err
	}); err != nil {
		f.t.Fatal(err)
	}
	return n
}

func (f *deliveryFixture) statuses(provider string, sts ...inbound.Status) {
	f.t.Helper()
	for i := range sts {
		sts[i].Provider = provider
	}
	if err := f.svc.ReceiveStatuses(f.t.Context(), sts); err != nil {
		f.t.Fatalf("ReceiveStatuses: %v", err)
	}
}

const waID = "appointment:a1:confirmed:v2:whatsapp"
const smsID = "appointment:a1:confirmed:v2:sms"

// TestApplyStatusAnyOrder: whatever order and however often a message's
// statuses arrive, it ends at the furthest one: read over delivered over
// failed over sent; "read" alone counts as delivered, a late "sent"
// never downgrades, and a message not in a provider's hands takes none.
func TestApplyStatusAnyOrder(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		statuses []string
		want     persistence.NotificationStatus
	}{
		{[]string{"sent", "delivered", "read"}, persistence.NotificationRead},
		{[]string{"read"}, persistence.NotificationRead},
		{[]string{"delivered", "sent"}, persistence.NotificationDelivered},
		{[]string{"delivered", "delivered", "sent", "sent"}, persistence.NotificationDelivered},
		{[]string{"failed", "sent"}, persistence.NotificationFailed},
		{[]string{"undelivered"}, persistence.NotificationFailed},
		{[]string{"delivered", "failed"}, persistence.NotificationDelivered},
		{[]string{"sent", "queued", "sending", "accepted"}, persistence.NotificationSent},
	}
	for _, c := range cases {
		for _, order := range permutations(c.statuses) {
			n := persistence.Notification{ID: "n", Status: persistence.NotificationSent}
			for _, st := range order {
				n, _ = applyStatus(n, inbound.Status{Provider: "whatsapp", Status: st, ErrorCode: "131047"}, now)
			}
			if n.Status != c.want {
				t.Errorf("%v: ended %s, want %s", order, n.Status, c.want)
			}
			if c.want == persistence.NotificationFailed && n.LastError != "whatsapp reported the message failed (code 131047)" {
				t.Errorf("%v: last error %q", order, n.LastError)
			}
		}
	}
	for _, st := range []persistence.NotificationStatus{persistence.NotificationQueued, persistence.NotificationDead} {
		n := persistence.Notification{Status: st}
		if got, changed := applyStatus(n, inbound.Status{Status: "delivered"}, now); changed || got.Status != st {
			t.Errorf("%s took a delivery status: %s", st, got.Status)
		}
	}
}

func permutations(xs []string) [][]string {
	if len(xs) <= 1 {
		return [][]string{slices.Clone(xs)}
	}
	var out [][]string
	for i := range xs {
		rest := slices.Concat(xs[:i:i], xs[i+1:])
		for _, p := range permutations(rest) {
			out = append(out, append([]string{xs[i]}, p...))
		}
	}
	return out
}

// TestStatusesAppliedOnceByProviderID: the message is recorded with the
// id its provider gave; its statuses, delivered twice and out of order,
// leave it read and count one delivery; statuses of messages that are
// not notifications (a sign-in code) are ignored; no fallback.
func TestStatusesAppliedOnceByProviderID(t *testing.T) {
	for name, open := range drivers() {
		t.Run(name, func(t *testing.T) {
			f := newDeliveryFixture(t, open)
			f.handle()
			n := f.get(waID)
			if n.Status != persistence.NotificationSent || n.ProviderMessageID != "whatsapp.1" {
				t.Fatalf("sent %+v, want the provider's id recorded", n)
			}
			if at, ok := f.checks.scheduled[waID]; !ok || !at.Equal(f.now.Add(DefaultStatusWindow)) ||
				string(f.checks.causes[waID].Data) != "the event" {
				t.Fatalf("checks %+v, want one for the WhatsApp message at the end of its window with its cause", f.checks.scheduled)
			}
			f.statuses("whatsapp", inbound.Status{MessageID: "whatsapp.1", Status: "delivered"},
				inbound.Status{MessageID: "SMotp", Status: "delivered"})
			f.statuses("whatsapp", inbound.Status{MessageID: "whatsapp.1", Status: "read"},
				inbound.Status{MessageID: "whatsapp.1", Status: "sent"}, inbound.Status{MessageID: "whatsapp.1", Status: "delivered"})
			f.statuses("whatsapp", inbound.Status{MessageID: "whatsapp.1", Status: "read"})
			if n := f.get(waID); n.Status != persistence.NotificationRead {
				t.Fatalf("after delivered, read, sent, delivered, read: %s", n.Status)
			}
			if got := testutil.ToFloat64(f.metrics.deliveries.WithLabelValues("whatsapp", "appointment_confirmed")); got != 1 {
				t.Fatalf("delivered counted %v times, want 1", got)
			}
			if got := testutil.ToFloat64(f.metrics.sends.WithLabelValues("whatsapp", "appointment_confirmed")); got != 1 {
				t.Fatalf("sent counted %v", got)
			}
			if back, err := f.svc.CheckDelivery(t.Context(), waID); err != nil || back {
				t.Fatalf("the check of a read message: fall back %v, %v", back, err)
			}
			if len(f.checks.fired) != 0 || len(f.sender.messages()) != 1 {
				t.Fatalf("fired %v, sent %d", f.checks.fired, len(f.sender.messages()))
			}
		})
	}
}

// TestFailedStatusFallsBackToSMS: a "failed" status fires the check at
// once; the check says fall back and handling the cause again sends on
// SMS, once; a late "delivered" for the WhatsApp message is still
// recorded.
func TestFailedStatusFallsBackToSMS(t *testing.T) {
	for name, open := range drivers() {
		t.Run(name, func(t *testing.T) {
			f := newDeliveryFixture(t, open)
			f.handle()
			f.statuses("whatsapp", inbound.Status{MessageID: "whatsapp.1", Status: "failed", ErrorCode: "131047"})
			if n := f.get(waID); n.Status != persistence.NotificationFailed || n.LastError != "whatsapp reported the message failed (code 131047)" {
				t.Fatalf("after failed: %+v", n)
			}
			if !slices.Equal(f.checks.fired, []string{waID}) {
				t.Fatalf("fired %v, want the WhatsApp message's check", f.checks.fired)
			}
			back, err := f.svc.CheckDelivery(t.Context(), waID)
			if err != nil || !back {
				t.Fatalf("check: fall back %v, %v", back, err)
			}
			f.handle()
			f.handle() // the check fired twice: nothing more
			sent := f.sender.messages()
			if len(sent) != 2 || sent[1].Channel != sender.ChannelSMS {
				t.Fatalf("sent %+v, want WhatsApp then SMS", sent)
			}
			if n := f.get(smsID); n.Status != persistence.NotificationSent || n.ProviderMessageID != "sms.2" {
				t.Fatalf("sms %+v", n)
			}
			if _, ok := f.checks.scheduled[smsID]; ok {
				t.Fatal("a check for the last channel the client can be reached on")
			}
			if got := testutil.ToFloat64(f.metrics.fallbacks.WithLabelValues("sms", "whatsapp", "appointment_confirmed")); got != 1 {
				t.Fatalf("fallbacks %v, want 1", got)
			}
			if got := testutil.ToFloat64(f.metrics.failures.WithLabelValues("whatsapp", "appointment_confirmed", FailedStatus)); got != 1 {
				t.Fatalf("failed by status %v, want 1", got)
			}
			f.statuses("whatsapp", inbound.Status{MessageID: "whatsapp.1", Status: "delivered"})
			if n := f.get(waID); n.Status != persistence.NotificationDelivered {
				t.Fatalf("late delivered: %s", n.Status)
			}
		})
	}
}

// TestNoStatusFallsBackAfterTheWindow: a check that fires before the
// window ends asks to come back when it does; once it has, the message is
// failed for want of a status and the cause handled again goes by SMS.
func TestNoStatusFallsBackAfterTheWindow(t *testing.T) {
	for name, open := range drivers() {
		t.Run(name, func(t *testing.T) {
			f := newDeliveryFixture(t, open)
			f.handle()
			f.now = f.now.Add(DefaultStatusWindow - time.Minute)
			_, err := f.svc.CheckDelivery(t.Context(), waID)
			var retry *RetryError
			if !errors.As(err, &retry) || retry.After != time.Minute {
				t.Fatalf("early check: %v, want a retry in 1m", err)
			}
			f.now = f.now.Add(time.Minute)
			if back, err := f.svc.CheckDelivery(t.Context(), waID); err != nil || !back {
				t.Fatalf("check at the end of the window: %v, %v", back, err)
			}
			if n := f.get(waID); n.Status != persistence.NotificationFailed || n.LastError != "no delivery status within 15m0s" {
				t.Fatalf("after the window: %+v", n)
			}
			f.handle()
			if sent := f.sender.messages(); len(sent) != 2 || sent[1].Channel != sender.ChannelSMS {
				t.Fatalf("sent %+v", sent)
			}
			if got := testutil.ToFloat64(f.metrics.failures.WithLabelValues("whatsapp", "appointment_confirmed", FailedNoStatus)); got != 1 {
				t.Fatalf("failed for no status %v, want 1", got)
			}
			// A late "sent" changes nothing; no check for a message gone.
			f.statuses("whatsapp", inbound.Status{MessageID: "whatsapp.1", Status: "sent"})
			if n := f.get(waID); n.Status != persistence.NotificationFailed {
				t.Fatalf("late sent: %s", n.Status)
			}
			if back, err := f.svc.CheckDelivery(t.Context(), "appointment:gone:confirmed:v1:whatsapp"); err != nil || back {
				t.Fatalf("check of a missing notification: %v, %v", back, err)
			}
		})
	}
}

// TestWaitlistOfferHasAShorterWindow: kinds that lose their point when
// late wait less; a configured window shorter still wins.
func TestWaitlistOfferHasAShorterWindow(t *testing.T) {
	svc := &Service{cfg: Config{StatusWindow: DefaultStatusWindow}}
	if got := svc.StatusWindow(KindWaitlistOffer); got != 5*time.Minute {
		t.Fatalf("waitlist offer window %s", got)
	}
	if got := svc.StatusWindow(KindAppointmentHeld); got != 5*time.Minute {
		t.Fatalf("deposit hold window %s", got)
	}
	if got := svc.StatusWindow(KindAppointmentConfirmed); got != DefaultStatusWindow {
		t.Fatalf("confirmation window %s", got)
	}
	svc.cfg.StatusWindow = 3 * time.Second
	if got := svc.StatusWindow(KindWaitlistOffer); got != 3*time.Second {
		t.Fatalf("configured shorter window: %s", got)
	}
}
