package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/spa-engine/spa/persistence"
)

// testNotificationTemplates: versions are stored once each, listed in
// order, the latest is their maximum (1 when none), and an activation
// replaces the previous one of the same kind, language and channel.
func testNotificationTemplates(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	v2 := persistence.NotificationTemplate{Kind: "appointment_confirmed", Language: "es-CO", Channel: "email", Version: 2,
		Subject: "Tu cita", Body: "Hola {{.Service}}", CreatedAt: base, CreatedBy: "admin-1"}
	v3 := v2
	v3.Version, v3.Body = 3, "Otra {{.When}}"
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		latest, err := tx.NotificationTemplateLatest(ctx, v2.Kind, v2.Language, v2.Channel)
		if err != nil || latest != 1 {
			t.Fatalf("latest with none stored: %d, %v; want 1", latest, err)
		}
		if err := tx.NotificationTemplateCreate(ctx, v3); err != nil {
			return err
		}
		return tx.NotificationTemplateCreate(ctx, v2)
	})
	wantErr(t, "the same version again", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		return tx.NotificationTemplateCreate(ctx, v2)
	}), persistence.ErrConflict)
	bad := v2
	bad.Version = 1
	wantErr(t, "version 1 (the embedded text)", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		return tx.NotificationTemplateCreate(ctx, bad)
	}), persistence.ErrInvalid)
	want2, want3 := v2, v3
	want2.CreatedAt, want3.CreatedAt = ct(base), ct(base)
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		all, err := tx.NotificationTemplateList(ctx)
		if err != nil {
			return err
		}
		wantEqual(t, "list", all, []persistence.NotificationTemplate{want2, want3})
		got, err := tx.NotificationTemplateGet(ctx, v2.Kind, v2.Language, v2.Channel, 3)
		if err != nil {
			return err
		}
		wantEqual(t, "get", got, want3)
		latest, err := tx.NotificationTemplateLatest(ctx, v2.Kind, v2.Language, v2.Channel)
		if err != nil || latest != 3 {
			t.Fatalf("latest: %d, %v; want 3", latest, err)
		}
		_, err = tx.NotificationTemplateGet(ctx, v2.Kind, v2.Language, "sms", 2)
		wantErr(t, "get of another channel", err, persistence.ErrNotFound)
		return nil
	})
	for _, v := range []int{2, 3} {
		mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
			return tx.NotificationTemplateActivate(ctx, persistence.NotificationTemplateActive{Kind: v2.Kind, Language: v2.Language,
				Channel: v2.Channel, Version: v, ActivatedAt: base.Add(time.Duration(v) * time.Minute), ActivatedBy: "admin-2"})
		})
	}
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		got, err := tx.NotificationTemplateActives(ctx)
		wantEqual(t, "actives", got, []persistence.NotificationTemplateActive{{Kind: v2.Kind, Language: v2.Language, Channel: v2.Channel,
			Version: 3, ActivatedAt: ct(base.Add(3 * time.Minute)), ActivatedBy: "admin-2"}})
		return err
	})
}
