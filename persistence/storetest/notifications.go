package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spa-engine/spa/persistence"
)

// notificationTests are the conformance tests of persistence.NotificationStore.
var notificationTests = []struct {
	name string
	fn   func(*testing.T, Opener)
}{
	{"Notifications", testNotifications},
	{"NotificationCreateRace", testNotificationCreateRace},
	{"NotificationBodySealed", testNotificationBodySealed},
	{"NotificationTemplates", testNotificationTemplates},
	{"NotificationPreferences", testNotificationPreferences},
}

func testNotification(id, user, kind string, at time.Time) persistence.Notification {
	return persistence.Notification{ID: id, UserID: user, Kind: kind, Category: persistence.CategoryBooking,
		Channel: "whatsapp", Status: persistence.NotificationQueued, Body: "Hola, tu cita de " + id, CreatedAt: at}
}

// testNotifications: create is idempotent by id, updates change only the
// delivery fields, and the list filters and orders newest first.
func testNotifications(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	n := testNotification("appointment:a1:confirmed:v2:whatsapp", "client-1", "appointment_confirmed", base)
	create := func(n persistence.Notification) (persistence.Notification, bool) {
		t.Helper()
		var got persistence.Notification
		var created bool
		mustTx(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
			got, created, err = tx.NotificationCreate(ctx, n)
			return err
		})
		return got, created
	}
	stored, created := create(n)
	want := n
	want.CreatedAt, want.UpdatedAt = ct(base), ct(base)
	if !created {
		t.Fatal("first create reported the row as existing")
	}
	wantEqual(t, "created", stored, want)

	again := n
	again.Body, again.CreatedAt = "another body", base.Add(time.Hour)
	if got, created := create(again); created {
		t.Fatal("a second create of the same id created a row")
	} else {
		wantEqual(t, "second create returns the first row", got, want)
	}

	sent := want
	sent.Status, sent.Attempts, sent.LastError, sent.ProviderMessageID = persistence.NotificationSent, 2, "timeout", "wamid.1"
	sent.UpdatedAt, sent.SentAt = ct(base.Add(time.Minute)), ct(base.Add(time.Minute))
	sent.Body = "ignored: the body never changes"
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error { return tx.NotificationUpdate(ctx, sent) })
	got := mustVal(t, s, func(ctx context.Context, tx persistence.Tx) (persistence.Notification, error) {
		return tx.NotificationGet(ctx, n.ID)
	})
	sent.Body = want.Body
	wantEqual(t, "after update", got, sent)

	missing := sent
	missing.ID = "appointment:nope:confirmed:v1:sms"
	wantErr(t, "update absent", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		return tx.NotificationUpdate(ctx, missing)
	}), persistence.ErrNotFound)
	_, err := txVal(t, s, func(ctx context.Context, tx persistence.Tx) (persistence.Notification, error) {
		return tx.NotificationGet(ctx, missing.ID)
	})
	wantErr(t, "get absent", err, persistence.ErrNotFound)
	bad := n
	bad.Status = "lost"
	wantErr(t, "update to an unknown status", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		return tx.NotificationUpdate(ctx, bad)
	}), persistence.ErrInvalid)
	for name, mod := range map[string]func(*persistence.Notification){
		"no id":            func(n *persistence.Notification) { n.ID = "" },
		"no user":          func(n *persistence.Notification) { n.UserID = "" },
		"unknown category": func(n *persistence.Notification) { n.Category = "gossip" },
		"unknown status":   func(n *persistence.Notification) { n.Status = "lost" },
		"no time":          func(n *persistence.Notification) { n.CreatedAt = time.Time{} },
	} {
		bad := testNotification("x:"+name, "client-1", "appointment_confirmed", base)
		mod(&bad)
		wantErr(t, "create with "+name, txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
			_, _, err := tx.NotificationCreate(ctx, bad)
			return err
		}), persistence.ErrInvalid)
	}

	// Three more, one minute apart: the list is newest first and filters.
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		for i, kind := range []string{"waitlist_offer", "appointment_confirmed", "appointment_cancelled"} {
			m := testNotification(fmt.Sprintf("n%d", i+2), "client-2", kind, base.Add(time.Duration(i+1)*time.Minute))
			if kind == "waitlist_offer" {
				m.Status = persistence.NotificationDead
			}
			if _, _, err := tx.NotificationCreate(ctx, m); err != nil {
				return err
			}
		}
		return nil
	})
	list := func(p persistence.NotificationListParams) []string {
		t.Helper()
		ns := mustVal(t, s, func(ctx context.Context, tx persistence.Tx) ([]persistence.Notification, error) {
			return tx.NotificationList(ctx, p)
		})
		var ids []string
		for _, n := range ns {
			ids = append(ids, n.ID)
		}
		return ids
	}
	for _, c := range []struct {
		name string
		p    persistence.NotificationListParams
		want []string
	}{
		{"all", persistence.NotificationListParams{Limit: 10}, []string{"n4", "n3", "n2", n.ID}},
		{"limit", persistence.NotificationListParams{Limit: 2}, []string{"n4", "n3"}},
		{"kind", persistence.NotificationListParams{Kind: "appointment_confirmed", Limit: 10}, []string{"n3", n.ID}},
		{"status", persistence.NotificationListParams{Status: persistence.NotificationDead, Limit: 10}, []string{"n2"}},
		{"both", persistence.NotificationListParams{Status: persistence.NotificationSent, Kind: "appointment_confirmed", Limit: 10}, []string{n.ID}},
		{"none", persistence.NotificationListParams{Kind: "order_shipped", Limit: 10}, nil},
	} {
		wantEqual(t, "list "+c.name, list(c.p), c.want)
	}
	for _, limit := range []int{0, persistence.MaxNotificationListLimit + 1} {
		if err := txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
			_, err := tx.NotificationList(ctx, persistence.NotificationListParams{Limit: limit})
			return err
		}); !errors.Is(err, persistence.ErrInvalid) {
			t.Fatalf("list with limit %d: %v, want ErrInvalid", limit, err)
		}
	}
}

// testNotificationCreateRace: two writers of one cause (a redelivery on
// another node) end with one row, and exactly one of them created it.
func testNotificationCreateRace(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	const writers = 6
	var wg sync.WaitGroup
	created := make([]bool, writers)
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() {
			n := testNotification("waitlist:e1:offer:sms", "client-1", "waitlist_offer", base.Add(time.Duration(i)*time.Second))
			errs[i] = txErr(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
				_, created[i], err = tx.NotificationCreate(ctx, n)
				return err
			})
		})
	}
	wg.Wait()
	n := 0
	for i := range writers {
		if errs[i] != nil {
			t.Fatalf("writer %d: %v", i, errs[i])
		}
		if created[i] {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d writers created the row; want exactly 1", n)
	}
	if got := mustVal(t, s, func(ctx context.Context, tx persistence.Tx) ([]persistence.Notification, error) {
		return tx.NotificationList(ctx, persistence.NotificationListParams{Limit: 10})
	}); len(got) != 1 {
		t.Fatalf("%d rows for one cause", len(got))
	}
}

// testNotificationBodySealed: with a PersonalSealer the body reads back
// in the clear, is not stored in the clear, and after the client's
// anonymisation is gone; another client's body is untouched.
func testNotificationBodySealed(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{Personal: fakeSealer{}})
	u, other := newProfileUser(t, s, 60), newProfileUser(t, s, 61)
	mine := testNotification("appointment:a9:confirmed:v2:whatsapp", u.ID, "appointment_confirmed", base)
	mine.Body = "Hola Ana, tu masaje es el martes"
	theirs := testNotification("appointment:b9:confirmed:v2:whatsapp", other.ID, "appointment_confirmed", base)
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		for _, n := range []persistence.Notification{mine, theirs} {
			if _, _, err := tx.NotificationCreate(ctx, n); err != nil {
				return err
			}
		}
		return nil
	})
	get := func(s persistence.Store, id string) persistence.Notification {
		t.Helper()
		return mustVal(t, s, func(ctx context.Context, tx persistence.Tx) (persistence.Notification, error) {
			return tx.NotificationGet(ctx, id)
		})
	}
	if got := get(s, mine.ID); got.Body != mine.Body {
		t.Fatalf("body read back as %q", got.Body)
	}
	// At rest the body is not in the clear: a handle without the sealer
	// on the same database does not get it back.
	plain := open(t, persistence.Options{})
	err := txErr(t, plain, func(ctx context.Context, tx persistence.Tx) error {
		got, err := tx.NotificationGet(ctx, mine.ID)
		if err == nil && strings.Contains(got.Body, "Ana") {
			t.Errorf("the body is stored in the clear: %q", got.Body)
		}
		return err
	})
	if err == nil {
		t.Error("a handle without the sealer read a sealed body")
	}
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.UserAnonymise(ctx, persistence.AnonymiseParams{UserID: u.ID, PhoneIndex: []byte("0123456789abcdef-anon"), At: base.Add(time.Hour)})
		return err
	})
	if got := get(s, mine.ID); got.Body != "" || got.Status != mine.Status {
		t.Fatalf("after anonymisation: %+v; want the row without its body", got)
	}
	if got := get(s, theirs.ID); got.Body != theirs.Body {
		t.Fatalf("another client's body after anonymisation: %q", got.Body)
	}
}
