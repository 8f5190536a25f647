package notify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/providers/resilient"
	"github.com/spa-engine/spa/actors/providers/sender"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence"
)

func TestErrorClass(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("%w: whatsapp: %w", sender.ErrUnavailable, resilient.Transient(fmt.Errorf("twilio: %w", resilient.ErrOpen), 0)), ClassBreakerOpen},
		{fmt.Errorf("%w: %w", sender.ErrUnavailable, context.DeadlineExceeded), ClassTimeout},
		{fmt.Errorf("%w: 503 at 14:02 for +********4567", sender.ErrUnavailable), ClassProviderUnavailable},
		{fmt.Errorf("%w: 429 retry after 30s", sender.ErrUnavailable), ClassProviderUnavailable},
		{errors.New("connection reset by peer"), ClassError},
	} {
		if got := ErrorClass(tc.err); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.err, got, tc.want)
		}
		// The class survives the error's stored text (a redelivered dead
		// notification has only that).
		if got := textClass(tc.err.Error()); got != tc.want {
			t.Errorf("text %q: %q, want %q", tc.err, got, tc.want)
		}
	}
}

// memQueue is a DeadLetterQueue in memory that records what was requeued.
type memQueue struct {
	mu       sync.Mutex
	letters  []DeadLetter
	requeued []string
}

func (q *memQueue) List(_ context.Context, limit int) ([]DeadLetter, bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.letters) > limit {
		return slices.Clone(q.letters[:limit]), true, nil
	}
	return slices.Clone(q.letters), false, nil
}

func (q *memQueue) Get(_ context.Context, id string) (DeadLetter, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, l := range q.letters {
		if l.ID == id {
			return l, nil
		}
	}
	return DeadLetter{}, persistence.ErrNotFound
}

func (q *memQueue) Requeue(ctx context.Context, id string) error {
	if err := q.Remove(ctx, id); err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.requeued = append(q.requeued, id)
	return nil
}

func (q *memQueue) Remove(_ context.Context, id string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	i := slices.IndexFunc(q.letters, func(l DeadLetter) bool { return l.ID == id })
	if i < 0 {
		return persistence.ErrNotFound
	}
	q.letters = slices.Delete(q.letters, i, i+1)
	return nil
}

var adminCaller = service.Caller{Claims: auth.Claims{Subject: "boss", Role: auth.RoleAdmin}, RequestID: "req-1"}

// deadLetterFixture stores three dead notifications and one sent, and
// parks a letter for each: two timeouts, one breaker_open, one of the
// sent one (its row was sent by a later handling).
func deadLetterFixture(t *testing.T, open func(*testing.T, persistence.Options) persistence.Store) (*fixture, *memQueue, *DeadLetters) {
	t.Helper()
	f := newFixture(t, open, Config{})
	q := &memQueue{}
	base := f.now.UTC()
	for i, c := range []struct {
		class  string
		status persistence.NotificationStatus
	}{{ClassTimeout, persistence.NotificationDead}, {ClassBreakerOpen, persistence.NotificationDead},
		{ClassTimeout, persistence.NotificationDead}, {ClassTimeout, persistence.NotificationSent}} {
		n := persistence.Notification{ID: fmt.Sprintf("appointment:a%d:confirmed:v2:whatsapp", i), UserID: f.client, Kind: string(KindAppointmentConfirmed),
			Category: persistence.CategoryBooking, Channel: "whatsapp", Status: persistence.NotificationQueued, Body: "hola", CreatedAt: base}
		if err := f.store.InTx(t.Context(), func(tx persistence.Tx) error {
			if _, _, err := tx.NotificationCreate(t.Context(), n); err != nil {
				return err
			}
			n.Status, n.Attempts, n.LastError, n.UpdatedAt = c.status, 6, "the "+c.class, base.Add(time.Duration(i)*time.Minute)
			return tx.NotificationUpdate(t.Context(), n)
		}); err != nil {
			t.Fatal(err)
		}
		q.letters = append(q.letters, DeadLetter{ID: fmt.Sprint(i + 1), NotificationID: n.ID, Kind: n.Kind, Channel: n.Channel,
			ErrorClass: c.class, Error: n.LastError, Attempts: 6, QueuedAt: base, DeadAt: n.UpdatedAt})
	}
	return f, q, NewDeadLetters(f.store, q, func() time.Time { return base.Add(time.Hour) })
}

func (f *fixture) notification(id string) persistence.Notification {
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

func (f *fixture) audits(action string) []persistence.AuditEntry {
	f.t.Helper()
	var out []persistence.AuditEntry
	if err := f.store.InTx(f.t.Context(), func(tx persistence.Tx) error {
		es, err := tx.AuditList(f.t.Context(), persistence.AuditListParams{Limit: 100})
		for _, e := range es {
			if e.Action == action {
				out = append(out, e)
			}
		}
		return err
	}); err != nil {
		f.t.Fatal(err)
	}
	return out
}

// TestDeadLetterSummary: letters grouped by class, the largest group
// first, with count, first and last seen, the newest error and the oldest
// letters up to the limit; admins only.
func TestDeadLetterSummary(t *testing.T) {
	for name, open := range drivers() {
		t.Run(name, func(t *testing.T) {
			f, _, dl := deadLetterFixture(t, open)
			sum, err := dl.Summary(t.Context(), adminCaller, 2)
			if err != nil {
				t.Fatal(err)
			}
			base := f.now.UTC()
			if sum.Total != 4 || sum.Truncated || len(sum.Groups) != 2 {
				t.Fatalf("%+v", sum)
			}
			g := sum.Groups[0]
			if g.ErrorClass != ClassTimeout || g.Count != 3 || !g.FirstSeen.Equal(base) || !g.LastSeen.Equal(base.Add(3*time.Minute)) ||
				g.Example != "the timeout" || len(g.Letters) != 2 || g.Letters[0].ID != "1" || g.Letters[1].ID != "3" {
				t.Fatalf("timeouts %+v", g)
			}
			if g := sum.Groups[1]; g.ErrorClass != ClassBreakerOpen || g.Count != 1 || len(g.Letters) != 1 {
				t.Fatalf("breaker %+v", g)
			}
			desk := service.Caller{Claims: auth.Claims{Subject: "desk", Role: auth.RoleReceptionist}}
			if _, err := dl.Summary(t.Context(), desk, 2); !isCode(err, fault.CodeForbidden) {
				t.Fatalf("receptionist: %v", err)
			}
		})
	}
}

func isCode(err error, code string) bool {
	fe, ok := fault.From(err)
	return ok && fe.Code == code
}

// TestDeadLetterRetry: retrying one letter queues its dead notification
// again with a fresh round of attempts, audits it, requeues the letter;
// retrying a class does every letter of it, and a notification already
// sent stays sent (the requeued message finds it sent and sends nothing).
func TestDeadLetterRetry(t *testing.T) {
	for name, open := range drivers() {
		t.Run(name, func(t *testing.T) {
			f, q, dl := deadLetterFixture(t, open)
			ctx := t.Context()
			res, err := dl.Retry(ctx, adminCaller, DeadLetterSelector{ID: "2"})
			if err != nil || res.Done != 1 || res.Remaining {
				t.Fatalf("retry one: %+v, %v", res, err)
			}
			n := f.notification("appointment:a1:confirmed:v2:whatsapp")
			if n.Status != persistence.NotificationQueued || n.Attempts != 0 {
				t.Fatalf("retried notification %+v; want queued with no attempts", n)
			}
			if a := f.audits("notification_dead_letter.retry"); len(a) != 1 || a[0].Subject != "notification/appointment:a1:confirmed:v2:whatsapp" ||
				a[0].ActorID != "boss" || !strings.Contains(string(a[0].Detail), `"error_class":"breaker_open"`) {
				t.Fatalf("audit %+v", a)
			}
			if _, err := dl.Retry(ctx, adminCaller, DeadLetterSelector{ID: "2"}); !isCode(err, fault.CodeNotFound) {
				t.Fatalf("retried twice: %v", err)
			}
			res, err = dl.Retry(ctx, adminCaller, DeadLetterSelector{ErrorClass: ClassTimeout})
			if err != nil || res.Done != 3 {
				t.Fatalf("retry the timeouts: %+v, %v", res, err)
			}
			if !slices.Equal(q.requeued, []string{"2", "1", "3", "4"}) || len(q.letters) != 0 {
				t.Fatalf("requeued %v, left %+v", q.requeued, q.letters)
			}
			if n := f.notification("appointment:a3:confirmed:v2:whatsapp"); n.Status != persistence.NotificationSent || n.Attempts != 6 {
				t.Fatalf("a sent notification was touched: %+v", n)
			}
			if a := f.audits("notification_dead_letter.retry"); len(a) != 4 {
				t.Fatalf("%d retries audited, want 4", len(a))
			}
			for _, sel := range []DeadLetterSelector{{}, {ID: "1", ErrorClass: ClassTimeout}} {
				if _, err := dl.Retry(ctx, adminCaller, sel); !isCode(err, fault.CodeValidationFailed) {
					t.Errorf("%+v: %v", sel, err)
				}
			}
			if _, err := dl.Retry(ctx, adminCaller, DeadLetterSelector{ErrorClass: ClassTimeout}); !isCode(err, fault.CodeNotFound) {
				t.Fatalf("empty class: %v", err)
			}
		})
	}
}

// TestDeadLetterDiscard: a discard without confirmation is refused and
// removes nothing; confirmed, it removes the class's letters, audits each
// and leaves the notifications dead.
func TestDeadLetterDiscard(t *testing.T) {
	for name, open := range drivers() {
		t.Run(name, func(t *testing.T) {
			f, q, dl := deadLetterFixture(t, open)
			ctx := t.Context()
			if _, err := dl.Discard(ctx, adminCaller, DeadLetterSelector{ErrorClass: ClassTimeout}, false); !isCode(err, fault.CodeValidationFailed) {
				t.Fatalf("unconfirmed: %v", err)
			}
			if len(q.letters) != 4 || len(f.audits("notification_dead_letter.discard")) != 0 {
				t.Fatalf("an unconfirmed discard acted: %+v", q.letters)
			}
			res, err := dl.Discard(ctx, adminCaller, DeadLetterSelector{ErrorClass: ClassTimeout}, true)
			if err != nil || res.Done != 3 {
				t.Fatalf("discard: %+v, %v", res, err)
			}
			if len(q.letters) != 1 || q.letters[0].ErrorClass != ClassBreakerOpen || len(q.requeued) != 0 {
				t.Fatalf("left %+v, requeued %v", q.letters, q.requeued)
			}
			if a := f.audits("notification_dead_letter.discard"); len(a) != 3 {
				t.Fatalf("%d discards audited, want 3", len(a))
			}
			if n := f.notification("appointment:a0:confirmed:v2:whatsapp"); n.Status != persistence.NotificationDead {
				t.Fatalf("discarded notification %+v; want it still dead", n)
			}
		})
	}
}

// TestDeadLetterActionCap: one action on a class acts on at most
// MaxDeadLettersPerAction letters and says some remain; the next call
// does the rest.
func TestDeadLetterActionCap(t *testing.T) {
	for name, open := range drivers() {
		t.Run(name, func(t *testing.T) {
			q := &memQueue{}
			for i := range MaxDeadLettersPerAction + 1 {
				q.letters = append(q.letters, DeadLetter{ID: fmt.Sprint(i + 1), NotificationID: fmt.Sprintf("n%d", i), ErrorClass: ClassTimeout})
			}
			dl := NewDeadLetters(open(t, persistence.Options{}), q, nil)
			res, err := dl.Discard(t.Context(), adminCaller, DeadLetterSelector{ErrorClass: ClassTimeout}, true)
			if err != nil || res.Done != MaxDeadLettersPerAction || !res.Remaining || len(q.letters) != 1 {
				t.Fatalf("first: %+v, %v, %d left", res, err, len(q.letters))
			}
			res, err = dl.Discard(t.Context(), adminCaller, DeadLetterSelector{ErrorClass: ClassTimeout}, true)
			if err != nil || res.Done != 1 || res.Remaining || len(q.letters) != 0 {
				t.Fatalf("second: %+v, %v, %d left", res, err, len(q.letters))
			}
		})
	}
}
