package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/spa-engine/spa/persistence"
)

// deliveryTests are the conformance tests of persistence.DeliveryStore.
var deliveryTests = []struct {
	name string
	fn   func(*testing.T, Opener)
}{
	{"NotificationByProviderMessage", testNotificationByProviderMessage},
	{"MessagingWindows", testMessagingWindows},
}

func init() { notificationTests = append(notificationTests, deliveryTests...) }

// testNotificationByProviderMessage: a notification is found by the id
// its provider returned once it is recorded; an unknown or empty id is
// ErrNotFound (a row not sent yet holds "").
func testNotificationByProviderMessage(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	sent := testNotification("appointment:a1:confirmed:v2:whatsapp", "client-1", "appointment_confirmed", base)
	queued := testNotification("appointment:a2:confirmed:v2:whatsapp", "client-1", "appointment_confirmed", base)
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		for _, n := range []persistence.Notification{sent, queued} {
			if _, _, err := tx.NotificationCreate(ctx, n); err != nil {
				return err
			}
		}
		sent.Status, sent.Attempts, sent.ProviderMessageID = persistence.NotificationSent, 1, "wamid.HBgLMTY1"
		sent.UpdatedAt, sent.SentAt = base.Add(time.Second), base.Add(time.Second)
		return tx.NotificationUpdate(ctx, sent)
	})
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		got, err := tx.NotificationByProviderMessage(ctx, "wamid.HBgLMTY1")
		if err != nil {
			return err
		}
		if got.ID != sent.ID || got.Status != persistence.NotificationSent || got.Body != sent.Body {
			t.Errorf("found %+v, want %s sent with its body opened", got, sent.ID)
		}
		for _, id := range []string{"", "wamid.other"} {
			_, err := tx.NotificationByProviderMessage(ctx, id)
			wantErr(t, "by provider id "+id, err, persistence.ErrNotFound)
		}
		return nil
	})
}

// testMessagingWindows: the later inbound time wins whatever the order
// they are recorded in; a phone that never wrote has none.
func testMessagingWindows(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	const key = "5f2b…phone-index"
	last := func() time.Time {
		t.Helper()
		var at time.Time
		mustTx(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
			at, err = tx.MessagingWindowLast(ctx, key)
			return err
		})
		return at
	}
	if at := last(); !at.IsZero() {
		t.Fatalf("a phone that never wrote has a window from %v", at)
	}
	touch := func(at time.Time) {
		mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error { return tx.MessagingWindowTouch(ctx, key, at) })
	}
	touch(base.Add(time.Hour))
	touch(base) // delivered late: older
	if at := last(); !at.Equal(ct(base.Add(time.Hour))) {
		t.Fatalf("last inbound %v, want %v", at, ct(base.Add(time.Hour)))
	}
	touch(base.Add(2 * time.Hour))
	if at := last(); !at.Equal(ct(base.Add(2 * time.Hour))) {
		t.Fatalf("last inbound %v, want %v", at, ct(base.Add(2*time.Hour)))
	}
	err := txErr(t, s, func(ctx context.Context, tx persistence.Tx) error { return tx.MessagingWindowTouch(ctx, "", base) })
	wantErr(t, "no phone key", err, persistence.ErrInvalid)
}
