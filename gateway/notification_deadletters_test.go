package gateway

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/service/notify"
	"github.com/spa-engine/spa/persistence"
)

// letterQueue is a notify.DeadLetterQueue in memory.
type letterQueue struct {
	mu       sync.Mutex
	letters  []notify.DeadLetter
	requeued []string
}

func (q *letterQueue) List(_ context.Context, limit int) ([]notify.DeadLetter, bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.letters[:min(limit, len(q.letters))]), len(q.letters) > limit, nil
}

func (q *letterQueue) Get(_ context.Context, id string) (notify.DeadLetter, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, l := range q.letters {
		if l.ID == id {
			return l, nil
		}
	}
	return notify.DeadLetter{}, persistence.ErrNotFound
}

func (q *letterQueue) Requeue(ctx context.Context, id string) error {
	if err := q.Remove(ctx, id); err != nil {
		return err
	}
	q.mu.Lock()
	q.requeued = append(q.requeued, id)
	q.mu.Unlock()
	return nil
}

func (q *letterQueue) Remove(_ context.Context, id string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := len(q.letters)
	q.letters = slices.DeleteFunc(q.letters, func(l notify.DeadLetter) bool { return l.ID == id })
	if len(q.letters) == n {
		return persistence.ErrNotFound
	}
	return nil
}

// TestAdminNotificationDeadLetters: the admin lists the dead letters
// grouped by class, retries one (its notification queued again, the
// retry audited), is refused a discard without confirmation and discards
// a class with it; nobody else may; a node without notifications answers
// 503.
func TestAdminNotificationDeadLetters(t *testing.T) {
	at := time.Date(2026, 12, 6, 15, 0, 0, 0, time.UTC)
	q := &letterQueue{}
	for i, class := range []string{notify.ClassBreakerOpen, notify.ClassTimeout, notify.ClassBreakerOpen} {
		q.letters = append(q.letters, notify.DeadLetter{ID: string(rune('1' + i)), NotificationID: "appointment:a" + string(rune('1'+i)) + ":confirmed:v2:whatsapp",
			Kind: "appointment_confirmed", Channel: "whatsapp", ErrorClass: class, Error: "whatsapp: " + class, Attempts: 6,
			QueuedAt: at.Add(-time.Hour), DeadAt: at.Add(time.Duration(i) * time.Minute)})
	}
	e := newEnv(t, func(d *Deps) { d.NotificationDeadLetters = notify.NewDeadLetters(d.Store, q, nil) })
	if err := e.store.InTx(t.Context(), func(tx persistence.Tx) error {
		n := persistence.Notification{ID: "appointment:a1:confirmed:v2:whatsapp", UserID: "maria", Kind: "appointment_confirmed",
			Category: persistence.CategoryBooking, Channel: "whatsapp", Status: persistence.NotificationQueued, Body: "hola", CreatedAt: at}
		if _, _, err := tx.NotificationCreate(t.Context(), n); err != nil {
			return err
		}
		n.Status, n.Attempts, n.LastError = persistence.NotificationDead, 6, "whatsapp: breaker_open"
		return tx.NotificationUpdate(t.Context(), n)
	}); err != nil {
		t.Fatal(err)
	}
	const base = "/v1/admin/notifications/dead-letters"
	r := e.admin("GET", base+"?limit=1", "")
	type group struct {
		ErrorClass string    `json:"error_class"`
		Count      int       `json:"count"`
		FirstSeen  time.Time `json:"first_seen"`
		Letters    []struct {
			ID string `json:"id"`
		} `json:"letters"`
	}
	list := decode[struct {
		Total  int     `json:"total"`
		Groups []group `json:"groups"`
	}](t, r)
	if r.status != 200 || list.Total != 3 || len(list.Groups) != 2 || list.Groups[0].ErrorClass != notify.ClassBreakerOpen ||
		list.Groups[0].Count != 2 || !list.Groups[0].FirstSeen.Equal(at) || len(list.Groups[0].Letters) != 1 || list.Groups[0].Letters[0].ID != "1" {
		t.Fatalf("list: %d %s", r.status, r.body)
	}

	r = e.admin("POST", base+"/retry", `{"id":"1"}`, "Idempotency-Key", "retry-1")
	if r.status != 200 || decode[struct {
		Retried int `json:"retried"`
	}](t, r).Retried != 1 {
		t.Fatalf("retry: %d %s", r.status, r.body)
	}
	if again := e.admin("POST", base+"/retry", `{"id":"1"}`, "Idempotency-Key", "retry-1"); again.status != 200 ||
		again.header.Get("Idempotent-Replayed") != "true" || len(q.requeued) != 1 {
		t.Fatalf("replayed retry: %d %s, requeued %v", again.status, again.body, q.requeued)
	}
	if r := e.admin("POST", base+"/retry", `{"id":"1"}`); r.status != 404 {
		t.Fatalf("retried letter again: %d %s", r.status, r.body)
	}
	var n persistence.Notification
	var audits []persistence.AuditEntry
	if err := e.store.InTx(t.Context(), func(tx persistence.Tx) (err error) {
		if n, err = tx.NotificationGet(t.Context(), "appointment:a1:confirmed:v2:whatsapp"); err != nil {
			return err
		}
		audits, err = tx.AuditList(t.Context(), persistence.AuditListParams{Limit: 10})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if n.Status != persistence.NotificationQueued || len(audits) != 1 || audits[0].Action != "notification_dead_letter.retry" || audits[0].ActorID != "boss" {
		t.Fatalf("after retry: %+v, audits %+v", n, audits)
	}

	if r := e.admin("POST", base+"/discard", `{"error_class":"breaker_open"}`); r.status != 422 || r.errCode(t) != "validation_failed" {
		t.Fatalf("unconfirmed discard: %d %s", r.status, r.body)
	}
	if r := e.admin("POST", base+"/discard", `{"id":"2","error_class":"timeout","confirm":true}`); r.status != 422 {
		t.Fatalf("two selectors: %d %s", r.status, r.body)
	}
	r = e.admin("POST", base+"/discard", `{"error_class":"breaker_open","confirm":true}`)
	if r.status != 200 || decode[struct {
		Discarded int `json:"discarded"`
	}](t, r).Discarded != 1 || len(q.letters) != 1 || q.letters[0].ID != "2" {
		t.Fatalf("discard: %d %s, left %+v", r.status, r.body, q.letters)
	}

	desk := e.token("desk", auth.RoleReceptionist)
	if r := e.as(desk, "GET", base); r.status != 403 {
		t.Errorf("receptionist: %d", r.status)
	}
	if r := e.do("POST", base+"/retry", `{"id":"2"}`, "Authorization", "Bearer "+desk, "Content-Type", "application/json"); r.status != 403 {
		t.Errorf("receptionist retry: %d", r.status)
	}
	if r := e.do("GET", base, ""); r.status != 401 {
		t.Errorf("anonymous: %d", r.status)
	}
	if r := newEnv(t).admin("GET", base, ""); r.status != 503 {
		t.Errorf("notifications off: %d %s", r.status, r.body)
	}
}
