package notify

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/spa-engine/spa/actors/providers/inbound"
	"github.com/spa-engine/spa/actors/providers/sender"
	"github.com/spa-engine/spa/persistence"
)

// overtakingSender is a provider whose status webhooks arrive before
// SendTracked returns: each accepted message's statuses (by channel) are
// handed to the service first, as a fast webhook overtakes the row's
// write.
type overtakingSender struct {
	trackingSender
	svc      func() *Service
	statuses map[sender.Channel][]string
}

func (s overtakingSender) SendTracked(ctx context.Context, m sender.Message) (string, error) {
	id, err := s.trackingSender.SendTracked(ctx, m)
	if err != nil {
		return "", err
	}
	var sts []inbound.Status
	for _, st := range s.statuses[m.Channel] {
		sts = append(sts, inbound.Status{Provider: "whatsapp", MessageID: id, Status: st, ErrorCode: "131026"})
	}
	if err := s.svc().ReceiveStatuses(ctx, sts); err != nil {
		return "", err
	}
	return id, nil
}

// TestStatusBeforeProviderID: a status that arrives before the send's
// provider id is recorded is kept by that id and applied when the id is
// recorded: a "delivered" marks the message delivered (counted once), a
// "failed" sends it on the next channel at once; nothing is left kept.
// A status of an id that never becomes a notification's is dropped after
// EarlyStatusTTL.
func TestStatusBeforeProviderID(t *testing.T) {
	for name, open := range drivers() {
		t.Run(name, func(t *testing.T) {
			for _, c := range []struct {
				statuses []string
				want     persistence.NotificationStatus
			}{
				{[]string{"sent", "delivered"}, persistence.NotificationDelivered},
				{[]string{"read"}, persistence.NotificationRead},
				{[]string{"failed"}, persistence.NotificationFailed},
			} {
				f := newDeliveryFixture(t, open)
				over := overtakingSender{trackingSender: trackingSender{f.sender}, svc: func() *Service { return f.svc },
					statuses: map[sender.Channel][]string{sender.ChannelWhatsApp: c.statuses}}
				d := f.svc.deps
				d.Sender = over
				var err error
				if f.svc, err = New(d, f.svc.cfg); err != nil {
					t.Fatal(err)
				}
				f.handle()
				wa := f.get(waID)
				if wa.Status != c.want {
					t.Fatalf("%v before the id was recorded: %s, want %s", c.statuses, wa.Status, c.want)
				}
				sends := testutil.ToFloat64(f.metrics.sends.WithLabelValues("whatsapp", "appointment_confirmed"))
				deliveries := testutil.ToFloat64(f.metrics.deliveries.WithLabelValues("whatsapp", "appointment_confirmed"))
				if sends != 1 || (delivered(c.want) && deliveries != 1) || (!delivered(c.want) && deliveries != 0) {
					t.Fatalf("%v: sent %v, delivered %v", c.statuses, sends, deliveries)
				}
				msgs := f.sender.messages()
				if c.want == persistence.NotificationFailed {
					if sms := f.get(smsID); sms.Status != persistence.NotificationSent || len(msgs) != 2 || msgs[1].Channel != sender.ChannelSMS {
						t.Fatalf("failed before recorded: sms %s, messages %+v", sms.Status, msgs)
					}
					if got := testutil.ToFloat64(f.metrics.failures.WithLabelValues("whatsapp", "appointment_confirmed", FailedStatus)); got != 1 {
						t.Fatalf("failed by status counted %v times", got)
					}
				} else if len(msgs) != 1 {
					t.Fatalf("%v: %d messages, want 1", c.statuses, len(msgs))
				}
				// Nothing stays kept for the id.
				if err := f.store.InTx(t.Context(), func(tx persistence.Tx) error {
					left, err := tx.EarlyStatusTake(t.Context(), wa.ProviderMessageID)
					if len(left) != 0 {
						t.Errorf("statuses left kept: %+v", left)
					}
					return err
				}); err != nil {
					t.Fatal(err)
				}
			}

			// An id no notification ever carries: kept, then dropped once
			// older than EarlyStatusTTL when another status is kept.
			f := newDeliveryFixture(t, open)
			f.statuses("whatsapp", inbound.Status{MessageID: "wamid.not-a-notification", Status: "delivered"})
			f.now = f.now.Add(EarlyStatusTTL + time.Minute)
			f.statuses("whatsapp", inbound.Status{MessageID: "wamid.another", Status: "delivered"})
			if err := f.store.InTx(t.Context(), func(tx persistence.Tx) error {
				old, err := tx.EarlyStatusTake(t.Context(), "wamid.not-a-notification")
				if err != nil {
					return err
				}
				recent, err := tx.EarlyStatusTake(t.Context(), "wamid.another")
				if len(old) != 0 || len(recent) != 1 || recent[0].Status != "delivered" || recent[0].Provider != "whatsapp" {
					t.Errorf("kept: old %+v, recent %+v", old, recent)
				}
				return err
			}); err != nil {
				t.Fatal(err)
			}
		})
	}
}
