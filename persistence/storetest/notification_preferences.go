package storetest

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/spa-engine/spa/persistence"
)

// testNotificationPreferences: none stored is ErrNotFound; the first put
// creates version 1 and reads back as written; a put with a stale
// version is a conflict, so two writers cannot lose each other's change;
// anonymisation deletes the row and leaves another client's.
func testNotificationPreferences(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	u, other := newProfileUser(t, s, 70), newProfileUser(t, s, 71)
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.NotificationPreferencesGet(ctx, u.ID)
		wantErr(t, "get before any put", err, persistence.ErrNotFound)
		return nil
	})
	first := persistence.NotificationPreferences{UserID: u.ID, UpdatedAt: base,
		OptOuts: []persistence.NotificationOptOut{{Category: persistence.CategoryMarketing, Channel: "sms"},
			{Category: persistence.CategoryMarketing, Channel: "whatsapp"}},
		ChannelOrder: []string{"email", "whatsapp"}}
	stored := mustVal(t, s, func(ctx context.Context, tx persistence.Tx) (persistence.NotificationPreferences, error) {
		return tx.NotificationPreferencesPut(ctx, first)
	})
	if stored.Version != 1 {
		t.Fatalf("first put: version %d; want 1", stored.Version)
	}
	want := first
	want.Version, want.UpdatedAt = 1, ct(base)
	get := func(id string) persistence.NotificationPreferences {
		t.Helper()
		return mustVal(t, s, func(ctx context.Context, tx persistence.Tx) (persistence.NotificationPreferences, error) {
			return tx.NotificationPreferencesGet(ctx, id)
		})
	}
	wantEqual(t, "read back", get(u.ID), want)

	wantErr(t, "a second first put", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.NotificationPreferencesPut(ctx, first)
		return err
	}), persistence.ErrConflict)
	cleared := persistence.NotificationPreferences{UserID: u.ID, Version: 1, UpdatedAt: base.Add(time.Minute)}
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.NotificationPreferencesPut(ctx, cleared)
		return err
	})
	if got := get(u.ID); got.Version != 2 || len(got.OptOuts) != 0 || len(got.ChannelOrder) != 0 {
		t.Fatalf("after clearing: %+v; want version 2 with no opt-outs and no order", got)
	}
	wantErr(t, "a stale version", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.NotificationPreferencesPut(ctx, cleared)
		return err
	}), persistence.ErrConflict)
	bad := first
	bad.OptOuts = []persistence.NotificationOptOut{{Category: persistence.CategoryMarketing}}
	bad.UserID = other.ID
	wantErr(t, "an opt-out without its channel", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.NotificationPreferencesPut(ctx, bad)
		return err
	}), persistence.ErrInvalid)

	theirs := first
	theirs.UserID = other.ID
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		if _, err := tx.NotificationPreferencesPut(ctx, theirs); err != nil {
			return err
		}
		rep, err := tx.UserAnonymise(ctx, persistence.AnonymiseParams{UserID: u.ID, PhoneIndex: bytes.Repeat([]byte{0xdd}, 32), At: base.Add(time.Hour)})
		if err == nil && rep["notification_preferences"] != 1 {
			t.Errorf("anonymise report %v: want 1 row of notification_preferences", rep)
		}
		return err
	})
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.NotificationPreferencesGet(ctx, u.ID)
		wantErr(t, "get after anonymisation", err, persistence.ErrNotFound)
		return nil
	})
	if got := get(other.ID); len(got.OptOuts) != 2 {
		t.Fatalf("another client's preferences after anonymisation: %+v", got)
	}
}
