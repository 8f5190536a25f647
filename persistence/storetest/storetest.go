// Package storetest is the conformance suite every persistence driver must
// pass: one behavioural specification of persistence.Store, run by each
// driver's tests (persistence/sqlite, persistence/postgres).
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/spa-engine/spa/persistence"
)

// Opener opens a handle on a test database, not yet migrated. Calls with the
// same t must open new handles on the same database; calls with different
// subtests must get different, empty databases. The opener closes the
// handles it returned in t.Cleanup.
type Opener func(t *testing.T, opts persistence.Options) persistence.Store

// Exercise runs the conformance suite against the driver open opens.
// When migrated is not nil, it is an Opener whose databases start
// migrated (a copy of a migrated one, say), and every test but those of
// the migrations themselves takes its databases from it: migrating each
// subtest's database was most of the suite's time on SQLite under the
// race detector.
func Exercise(t *testing.T, open, migrated Opener) {
	t.Run("Migrate", func(t *testing.T) { testMigrate(t, open) })
	t.Run("MigrateConcurrent", func(t *testing.T) { testMigrateConcurrent(t, open) })
	if migrated == nil {
		migrated = open
	}
	tests := []struct {
		name string
		fn   func(*testing.T, Opener)
	}{
		{"PingClose", testPingClose},
		{"Idempotency", testIdempotency},
		{"IdempotencyClaim", testIdempotencyClaim},
		{"IdempotencyDeleteExpired", testIdempotencyDeleteExpired},
		{"Audit", testAudit},
		{"Outbox", testOutbox},
		{"Studio", testStudio},
		{"InTxRollback", testInTxRollback},
		{"InTxCancelled", testInTxCancelled},
		{"ConcurrentIncrements", testConcurrentIncrements},
		{"AfterOutboxCommit", testAfterOutboxCommit},
		{"QuotaCounters", testQuotaCounters},
	}
	tests = append(tests, bookingTests...)
	tests = append(tests, offersTests...)
	tests = append(tests, identityTests...)
	tests = append(tests, totpKioskTests...)
	tests = append(tests, shopOrderTests...)
	tests = append(tests, legalTests...)
	tests = append(tests, shopTests...)
	tests = append(tests, profileTests...)
	tests = append(tests, personalTests...)
	tests = append(tests, paymentTests...)
	tests = append(tests, voucherPurchaseTests...)
	tests = append(tests, notificationTests...)
	tests = append(tests, struct {
		name string
		fn   func(*testing.T, Opener)
	}{"ResourceClaims", testResourceClaims}, struct {
		name string
		fn   func(*testing.T, Opener)
	}{"Conversations", testConversations})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, migrated) })
	}
}

// ---- helpers ----

var errBoom = errors.New("storetest: boom")

// migrated opens a handle and migrates it.
func migrated(t *testing.T, open Opener, opts persistence.Options) persistence.Store {
	t.Helper()
	s := open(t, opts)
	if _, err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

// mustTx runs fn in a transaction and fails the test on error.
func mustTx(t *testing.T, s persistence.Store, fn func(ctx context.Context, tx persistence.Tx) error) {
	t.Helper()
	ctx := t.Context()
	if err := s.InTx(ctx, func(tx persistence.Tx) error { return fn(ctx, tx) }); err != nil {
		t.Fatalf("InTx: %v", err)
	}
}

// txErr runs fn in a transaction and returns its error.
func txErr(t *testing.T, s persistence.Store, fn func(ctx context.Context, tx persistence.Tx) error) error {
	ctx := t.Context()
	return s.InTx(ctx, func(tx persistence.Tx) error { return fn(ctx, tx) })
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

func wantEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

// base is a fixed instant with sub-microsecond digits, in a non-UTC zone,
// so tests check truncation and UTC conversion.
var base = time.Date(2025, 3, 14, 9, 26, 53, 589793238, time.FixedZone("COT", -5*3600))

var ct = persistence.CanonicalTime

func newID() string { return ulid.Make().String() }

// ---- Migrate ----

func testMigrate(t *testing.T, open Opener) {
	s := open(t, persistence.Options{})
	all, err := persistence.ParseMigrations(persistence.MigrationsFS(s.Dialect()))
	if err != nil || len(all) == 0 {
		t.Fatalf("ParseMigrations: %v, %v", all, err)
	}
	got, err := s.Migrate(t.Context())
	if err != nil {
		t.Fatalf("first Migrate: %v", err)
	}
	wantEqual(t, "first Migrate", got, all)
	got, err = s.Migrate(t.Context())
	if err != nil || len(got) != 0 {
		t.Fatalf("second Migrate = %v, %v; want nothing applied", got, err)
	}
	got, err = open(t, persistence.Options{}).Migrate(t.Context())
	if err != nil || len(got) != 0 {
		t.Fatalf("Migrate on a second handle = %v, %v; want nothing applied", got, err)
	}
}

func testMigrateConcurrent(t *testing.T, open Opener) {
	stores := []persistence.Store{open(t, persistence.Options{}), open(t, persistence.Options{})}
	all, _ := persistence.ParseMigrations(persistence.MigrationsFS(stores[0].Dialect()))
	start := make(chan struct{})
	results := make([][]persistence.Migration, len(stores))
	errs := make([]error, len(stores))
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Go(func() {
			<-start
			results[i], errs[i] = s.Migrate(t.Context())
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent Migrate %d: %v", i, err)
		}
	}
	if n := len(results[0]) + len(results[1]); n != len(all) {
		t.Fatalf("concurrent Migrate applied %v and %v; want %d migrations applied once", results[0], results[1], len(all))
	}
	for _, s := range stores {
		mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
			_, err := tx.OutboxPending(ctx, 1)
			return err
		})
	}
}

// ---- Ping, Close, Dialect ----

func testPingClose(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	if d := s.Dialect(); d != persistence.DialectSQLite && d != persistence.DialectPostgres {
		t.Fatalf("Dialect() = %q", d)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	wantErr(t, "Ping after Close", s.Ping(t.Context()), persistence.ErrUnavailable)
	wantErr(t, "InTx after Close", txErr(t, s, func(context.Context, persistence.Tx) error { return nil }),
		persistence.ErrUnavailable)
}

// ---- Idempotency ----

func testIdempotency(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	rec := persistence.IdempotencyRecord{
		Scope: "user-1", Key: "k1", RequestHash: []byte{1, 2, 3},
		State:       persistence.IdempotencyInProgress,
		LockedUntil: base.Add(30 * time.Second),
		Holder:      "node-a/01incarnation", // the process holding the key
		CreatedAt:   base, ExpiresAt: base.Add(24 * time.Hour),
	}
	want := rec
	want.LockedUntil, want.CreatedAt, want.ExpiresAt = ct(rec.LockedUntil), ct(rec.CreatedAt), ct(rec.ExpiresAt)
	other := rec
	other.Scope, other.RequestHash = "user-2", []byte{9}
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		if _, err := tx.IdempotencyGet(ctx, rec.Scope, rec.Key, base); !errors.Is(err, persistence.ErrNotFound) {
			return fmt.Errorf("get before put: %v", err)
		}
		if err := tx.IdempotencyPut(ctx, rec); err != nil {
			return err
		}
		return tx.IdempotencyPut(ctx, other)
	})
	get := func(scope string, now time.Time) (persistence.IdempotencyRecord, error) {
		var r persistence.IdempotencyRecord
		err := txErr(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
			r, err = tx.IdempotencyGet(ctx, scope, rec.Key, now)
			return err
		})
		return r, err
	}
	got, err := get("user-1", base)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	wantEqual(t, "get", got, want)
	if got, _ := get("user-2", base); !reflect.DeepEqual(got.RequestHash, []byte{9}) {
		t.Fatalf("scopes not isolated: %+v", got)
	}

	// Replace with the completed response; the lease is cleared.
	rec.State, rec.LockedUntil, rec.Holder = persistence.IdempotencyCompleted, time.Time{}, ""
	rec.ResponseStatus, rec.ResponseContentType, rec.ResponseBody = 201, "application/json", []byte(`{"ok":true}`)
	want.State, want.LockedUntil, want.Holder = rec.State, time.Time{}, ""
	want.ResponseStatus, want.ResponseContentType, want.ResponseBody = rec.ResponseStatus, rec.ResponseContentType, rec.ResponseBody
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error { return tx.IdempotencyPut(ctx, rec) })
	got, err = get("user-1", base.Add(time.Hour))
	if err != nil {
		t.Fatalf("get after replace: %v", err)
	}
	wantEqual(t, "get after replace", got, want)

	// Reseal: the body changes only while it is still the one read.
	for _, c := range []struct {
		old, body string
		want      bool
	}{{`{"stale":1}`, `{"x":1}`, false}, {`{"ok":true}`, `{"resealed":1}`, true}} {
		var ok bool
		mustTx(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
			ok, err = tx.IdempotencyReseal(ctx, rec.Scope, rec.Key, []byte(c.old), []byte(c.body))
			return err
		})
		if ok != c.want {
			t.Fatalf("reseal from %s: %v, want %v", c.old, ok, c.want)
		}
	}
	want.ResponseBody = []byte(`{"resealed":1}`)
	got, _ = get("user-1", base.Add(time.Hour))
	wantEqual(t, "get after reseal", got, want)

	// Expiry: present at ExpiresAt, absent after it.
	if _, err := get("user-1", want.ExpiresAt); err != nil {
		t.Fatalf("get at ExpiresAt: %v", err)
	}
	_, err = get("user-1", want.ExpiresAt.Add(time.Microsecond))
	wantErr(t, "get after expiry", err, persistence.ErrNotFound)

	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error { return tx.IdempotencyDelete(ctx, "user-1", "k1") })
	_, err = get("user-1", base)
	wantErr(t, "get after delete", err, persistence.ErrNotFound)
	wantErr(t, "delete absent", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		return tx.IdempotencyDelete(ctx, "user-1", "k1")
	}), persistence.ErrNotFound)
	if _, err := get("user-2", base); err != nil {
		t.Fatalf("other scope deleted too: %v", err)
	}
}

// testIdempotencyClaim: an actor's record is written only where no live
// record holds the key, and its activation finds it again by owner.
func testIdempotencyClaim(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	rec := persistence.IdempotencyRecord{
		Scope: "sub:u1", Key: "k1", Owner: "staff/ana", RequestHash: []byte{1},
		State: persistence.IdempotencyCompleted, ResponseBody: []byte(`{"first":true}`),
		CreatedAt: base, ExpiresAt: base.Add(time.Hour),
	}
	claim := func(r persistence.IdempotencyRecord) bool {
		err := txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
			return tx.IdempotencyClaim(ctx, r, errBoom)
		})
		if err != nil && !errors.Is(err, errBoom) {
			t.Fatalf("IdempotencyClaim: %v", err)
		}
		return err == nil
	}
	owned := func(owner string, now time.Time) []persistence.IdempotencyRecord {
		var out []persistence.IdempotencyRecord
		mustTx(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
			out, err = tx.IdempotencyOwned(ctx, owner, now)
			return err
		})
		return out
	}
	if !claim(rec) {
		t.Fatal("claim of a free key refused")
	}
	again := rec
	again.Owner, again.RequestHash, again.ResponseBody = "staff/bea", []byte{2}, []byte(`{"second":true}`)
	again.CreatedAt = base.Add(time.Minute)
	if claim(again) {
		t.Fatal("claim of a live key succeeded")
	}
	got := owned("staff/ana", base)
	if len(got) != 1 || string(got[0].ResponseBody) != `{"first":true}` || got[0].Owner != "staff/ana" {
		t.Fatalf("owned by ana = %+v; want the first record", got)
	}
	if n := len(owned("staff/bea", base)); n != 0 {
		t.Fatalf("owned by bea = %d records; want 0", n)
	}
	if n := len(owned("staff/ana", rec.ExpiresAt.Add(time.Microsecond))); n != 0 {
		t.Fatalf("owned after expiry = %d records; want 0", n)
	}
	// An expired record, not yet swept, gives way.
	again.CreatedAt, again.ExpiresAt = rec.ExpiresAt.Add(time.Second), rec.ExpiresAt.Add(time.Hour)
	if !claim(again) {
		t.Fatal("claim over an expired record refused")
	}
	if got := owned("staff/bea", again.CreatedAt); len(got) != 1 || !reflect.DeepEqual(got[0].RequestHash, []byte{2}) {
		t.Fatalf("owned by bea after takeover = %+v", got)
	}

	// List pages every live record in (scope, key) order.
	second := again
	second.Key = "k2"
	if !claim(second) {
		t.Fatal("claim of k2 refused")
	}
	list := func(afterScope, afterKey string) (keys []string) {
		mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
			recs, err := tx.IdempotencyList(ctx, again.CreatedAt, afterScope, afterKey, 1)
			for _, r := range recs {
				keys = append(keys, r.Key)
			}
			return err
		})
		return keys
	}
	if a, b, c := list("", ""), list("sub:u1", "k1"), list("sub:u1", "k2"); !reflect.DeepEqual(a, []string{"k1"}) ||
		!reflect.DeepEqual(b, []string{"k2"}) || len(c) != 0 {
		t.Fatalf("list pages = %v, %v, %v; want [k1], [k2], []", a, b, c)
	}
}

func testIdempotencyDeleteExpired(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		for i := range 7 {
			exp := base.Add(-time.Duration(i+1) * time.Minute) // 5 expired
			if i >= 5 {
				exp = base.Add(time.Duration(i) * time.Hour) // 2 live
			}
			err := tx.IdempotencyPut(ctx, persistence.IdempotencyRecord{
				Scope: "s", Key: fmt.Sprint("k", i), State: persistence.IdempotencyInProgress,
				LockedUntil: base, CreatedAt: base.Add(-time.Hour), ExpiresAt: exp,
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	deleteExpired := func(limit int) (n int, err error) {
		err = txErr(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
			n, err = tx.IdempotencyDeleteExpired(ctx, base, limit)
			return err
		})
		return n, err
	}
	for _, step := range []struct{ limit, want int }{{3, 3}, {10, 2}, {10, 0}} {
		if n, err := deleteExpired(step.limit); err != nil || n != step.want {
			t.Fatalf("DeleteExpired(limit %d) = %d, %v; want %d", step.limit, n, err, step.want)
		}
	}
	if _, err := deleteExpired(0); err == nil {
		t.Fatal("DeleteExpired(limit 0) succeeded")
	}
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		for _, k := range []string{"k5", "k6"} {
			if _, err := tx.IdempotencyGet(ctx, "s", k, base); err != nil {
				return fmt.Errorf("live record %s: %w", k, err)
			}
		}
		return nil
	})
}

// ---- Audit ----

func testAudit(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	var es []persistence.AuditEntry // oldest first
	for i := range 5 {
		e := persistence.AuditEntry{
			ID: newID(), At: base.Add(time.Duration(i) * time.Second), ActorID: "user-1", ActorRole: "owner",
			Action: "studio.update", Subject: []string{"studio/a", "studio/b"}[i%2],
			RequestID: fmt.Sprint("req-", i), Reason: "test", Detail: []byte(fmt.Sprintf(`{"i":%d}`, i)),
		}
		if i == 0 {
			e.Detail = nil
		}
		es = append(es, e)
	}
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		for _, e := range es {
			if err := tx.AuditAppend(ctx, e); err != nil {
				return err
			}
		}
		return nil
	})
	for i := range es {
		es[i].At = ct(es[i].At)
	}
	wantErr(t, "duplicate AuditAppend", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		return tx.AuditAppend(ctx, es[2])
	}), persistence.ErrConflict)

	list := func(p persistence.AuditListParams) ([]persistence.AuditEntry, error) {
		var got []persistence.AuditEntry
		err := txErr(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
			got, err = tx.AuditList(ctx, p)
			return err
		})
		return got, err
	}
	pick := func(idx ...int) []persistence.AuditEntry {
		out := []persistence.AuditEntry{}
		for _, i := range idx {
			out = append(out, es[i])
		}
		return out
	}
	for _, c := range []struct {
		name string
		p    persistence.AuditListParams
		want []persistence.AuditEntry
	}{
		{"all", persistence.AuditListParams{Limit: 10}, pick(4, 3, 2, 1, 0)},
		{"limit", persistence.AuditListParams{Limit: 2}, pick(4, 3)},
		{"page 2", persistence.AuditListParams{BeforeID: es[3].ID, Limit: 2}, pick(2, 1)},
		{"page 3", persistence.AuditListParams{BeforeID: es[1].ID, Limit: 2}, pick(0)},
		{"past the end", persistence.AuditListParams{BeforeID: es[0].ID, Limit: 2}, pick()},
		{"subject", persistence.AuditListParams{Subject: "studio/a", Limit: 10}, pick(4, 2, 0)},
		{"subject page", persistence.AuditListParams{Subject: "studio/a", BeforeID: es[4].ID, Limit: 1}, pick(2)},
		{"other subject", persistence.AuditListParams{Subject: "studio/b", Limit: 1000}, pick(3, 1)},
		{"unknown subject", persistence.AuditListParams{Subject: "studio/x", Limit: 10}, pick()},
	} {
		got, err := list(c.p)
		if err != nil {
			t.Fatalf("AuditList %s: %v", c.name, err)
		}
		wantEqual(t, "AuditList "+c.name, got, c.want)
	}
	for _, limit := range []int{0, persistence.MaxAuditListLimit + 1} {
		if _, err := list(persistence.AuditListParams{Limit: limit}); err == nil {
			t.Fatalf("AuditList limit %d succeeded", limit)
		}
	}
}

// ---- Outbox ----

func testOutbox(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	var es []persistence.OutboxEvent
	for i := range 4 {
		es = append(es, persistence.OutboxEvent{
			ID: newID(), Subject: "spa.events.studio.updated", Type: "spa.messages.StudioUpdated",
			Payload: []byte{byte(i), 0xff}, CreatedAt: base.Add(time.Duration(i) * time.Millisecond),
		})
	}
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		for _, e := range es {
			if err := tx.OutboxAppend(ctx, e); err != nil {
				return err
			}
		}
		return nil
	})
	for i := range es {
		es[i].CreatedAt = ct(es[i].CreatedAt)
	}
	wantErr(t, "duplicate OutboxAppend", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		return tx.OutboxAppend(ctx, es[1])
	}), persistence.ErrConflict)

	read := func(fn func(context.Context, persistence.Tx) ([]persistence.OutboxEvent, error)) []persistence.OutboxEvent {
		t.Helper()
		var got []persistence.OutboxEvent
		mustTx(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
			got, err = fn(ctx, tx)
			return err
		})
		return got
	}
	pending := func(limit int) []persistence.OutboxEvent {
		t.Helper()
		return read(func(ctx context.Context, tx persistence.Tx) ([]persistence.OutboxEvent, error) {
			return tx.OutboxPending(ctx, limit)
		})
	}
	among := func(ids ...string) []persistence.OutboxEvent {
		t.Helper()
		return read(func(ctx context.Context, tx persistence.Tx) ([]persistence.OutboxEvent, error) {
			return tx.OutboxPendingAmong(ctx, ids)
		})
	}
	count := func(want int) {
		t.Helper()
		mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
			p, err := tx.OutboxCount(ctx)
			if err == nil && p != want {
				err = fmt.Errorf("OutboxCount = %d, want %d", p, want)
			}
			return err
		})
	}
	wantEqual(t, "pending", pending(10), es)
	wantEqual(t, "pending limit 2", pending(2), es[:2])
	wantEqual(t, "pending among three, one unknown, in id order", among(es[3].ID, "no-such-event", es[1].ID), []persistence.OutboxEvent{es[1], es[3]})
	if got := among(); len(got) != 0 {
		t.Fatalf("pending among no ids: %v", got)
	}
	count(4)

	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		if err := tx.OutboxDelete(ctx, nil); err != nil {
			return err
		}
		return tx.OutboxDelete(ctx, []string{es[2].ID, es[0].ID})
	})
	wantEqual(t, "pending after publish", pending(10), []persistence.OutboxEvent{es[1], es[3]})
	wantEqual(t, "pending among deleted and pending", among(es[0].ID, es[1].ID, es[2].ID), []persistence.OutboxEvent{es[1]})
	count(2)
	// Deleting again (a relay that published twice) is no error.
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		return tx.OutboxDelete(ctx, []string{es[0].ID, es[3].ID})
	})
	wantEqual(t, "pending after a second delete", pending(10), []persistence.OutboxEvent{es[1]})
	count(1)
	if err := txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.OutboxPending(ctx, 0)
		return err
	}); err == nil {
		t.Fatal("OutboxPending(0) succeeded")
	}
}

// ---- Studio ----

func testStudio(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	put := func(st persistence.Studio) (got persistence.Studio, err error) {
		err = txErr(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
			got, err = tx.StudioPut(ctx, st)
			return err
		})
		return got, err
	}
	get := func(id string) (got persistence.Studio, err error) {
		err = txErr(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
			got, err = tx.StudioGet(ctx, id)
			return err
		})
		return got, err
	}
	_, err := get("default")
	wantErr(t, "get absent", err, persistence.ErrNotFound)

	st := persistence.Studio{ID: "default", Name: "Spa", TimeZone: "America/Bogota", Currency: "COP",
		Phone: "+573001234567", Email: "spa@example.com", UpdatedAt: base}
	v1, err := put(st)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	want := st
	want.Version, want.UpdatedAt = 1, ct(base)
	wantEqual(t, "create", v1, want)
	got, err := get("default")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	wantEqual(t, "get", got, want)

	_, err = put(st)
	wantErr(t, "create existing", err, persistence.ErrConflict)
	stale := v1
	stale.Version = 7
	_, err = put(stale)
	wantErr(t, "future version", err, persistence.ErrConflict)

	v1.Name, v1.UpdatedAt = "Spa Centro", base.Add(time.Hour)
	v2, err := put(v1)
	if err != nil || v2.Version != 2 || v2.Name != "Spa Centro" {
		t.Fatalf("update = %+v, %v; want version 2", v2, err)
	}
	got, _ = get("default")
	wantEqual(t, "get after update", got, v2)
	_, err = put(v1) // still version 1
	wantErr(t, "stale version", err, persistence.ErrConflict)
	missing := v1
	missing.ID = "other"
	_, err = put(missing)
	wantErr(t, "update absent", err, persistence.ErrConflict)
}

// ---- InTx ----

func testInTxRollback(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	err := txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		if err := tx.AuditAppend(ctx, persistence.AuditEntry{ID: newID(), At: base, Subject: "s"}); err != nil {
			return err
		}
		if err := tx.OutboxAppend(ctx, persistence.OutboxEvent{ID: newID(), CreatedAt: base}); err != nil {
			return err
		}
		if err := tx.IdempotencyPut(ctx, persistence.IdempotencyRecord{Scope: "s", Key: "k",
			State: persistence.IdempotencyInProgress, CreatedAt: base, ExpiresAt: base.Add(time.Hour)}); err != nil {
			return err
		}
		if _, err := tx.StudioPut(ctx, persistence.Studio{ID: "default", UpdatedAt: base}); err != nil {
			return err
		}
		return fmt.Errorf("wrapped: %w", errBoom)
	})
	wantErr(t, "InTx with failing fn", err, errBoom)
	assertEmpty(t, s)

	// A driver error returned by fn comes back as its sentinel.
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.StudioPut(ctx, persistence.Studio{ID: "default", UpdatedAt: base})
		return err
	})
	wantErr(t, "InTx returning a conflict", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.StudioPut(ctx, persistence.Studio{ID: "default", UpdatedAt: base})
		return err
	}), persistence.ErrConflict)
}

// assertEmpty checks that no store holds any row.
func assertEmpty(t *testing.T, s persistence.Store) {
	t.Helper()
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		if es, err := tx.AuditList(ctx, persistence.AuditListParams{Limit: 10}); err != nil || len(es) != 0 {
			return fmt.Errorf("audit log: %v, %v", es, err)
		}
		if p, err := tx.OutboxCount(ctx); err != nil || p != 0 {
			return fmt.Errorf("outbox: %d, %v", p, err)
		}
		if _, err := tx.IdempotencyGet(ctx, "s", "k", base); !errors.Is(err, persistence.ErrNotFound) {
			return fmt.Errorf("idempotency: %v", err)
		}
		if _, err := tx.StudioGet(ctx, "default"); !errors.Is(err, persistence.ErrNotFound) {
			return fmt.Errorf("studio: %v", err)
		}
		return nil
	})
}

func testInTxCancelled(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	write := func(ctx context.Context, tx persistence.Tx) error {
		return tx.AuditAppend(ctx, persistence.AuditEntry{ID: newID(), At: base, Subject: "s"})
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := s.InTx(ctx, func(tx persistence.Tx) error { return write(ctx, tx) })
	wantErr(t, "InTx on a cancelled context", err, context.Canceled)

	ctx, cancel = context.WithCancel(t.Context())
	err = s.InTx(ctx, func(tx persistence.Tx) error {
		if err := write(ctx, tx); err != nil {
			return err
		}
		cancel() // before commit
		return nil
	})
	wantErr(t, "InTx cancelled before commit", err, context.Canceled)
	assertEmpty(t, s)
}

// testConcurrentIncrements bumps a studio's version from 8 goroutines. On
// PostgreSQL all first attempts read the same version before any writes, so
// serialization failures and retries are certain; SQLite serializes the
// transactions with BEGIN IMMEDIATE, where such a barrier would deadlock.
func testConcurrentIncrements(t *testing.T, open Opener) {
	const workers = 8
	s := migrated(t, open, persistence.Options{})
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.StudioPut(ctx, persistence.Studio{ID: "default", UpdatedAt: base})
		return err
	})
	barrier := s.Dialect() == persistence.DialectPostgres
	arrived, release := make(chan struct{}, workers), make(chan struct{})
	go func() {
		for range workers {
			<-arrived
		}
		close(release)
	}()
	var attempts atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for i := range workers {
		wg.Go(func() {
			first := true
			errs[i] = txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
				attempts.Add(1)
				st, err := tx.StudioGet(ctx, "default")
				if err != nil {
					return err
				}
				if first && barrier {
					arrived <- struct{}{}
					select {
					case <-release:
					case <-ctx.Done():
						return ctx.Err()
					}
				}
				first = false
				st.UpdatedAt = base.Add(time.Duration(st.Version) * time.Second)
				_, err = tx.StudioPut(ctx, st)
				return err
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("worker %d: %v", i, err)
		}
	}
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		st, err := tx.StudioGet(ctx, "default")
		if err == nil && st.Version != workers+1 {
			err = fmt.Errorf("version %d after %d increments from 1: lost update", st.Version, workers)
		}
		return err
	})
	t.Logf("%d attempts for %d transactions", attempts.Load(), workers)
	if barrier && attempts.Load() <= workers {
		t.Fatalf("%d attempts: no transaction was retried", attempts.Load())
	}
}

// testAfterOutboxCommit checks the hook runs once per committed transaction
// that appended to the outbox, with the ids it appended, and never
// otherwise.
func testAfterOutboxCommit(t *testing.T, open Opener) {
	var (
		mu    sync.Mutex
		calls [][]string
	)
	s := migrated(t, open, persistence.Options{AfterOutboxCommit: func(ids []string) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, ids)
	}})
	var appended []string // by the last transaction
	appendEvent := func(ctx context.Context, tx persistence.Tx) error {
		id := newID()
		appended = append(appended, id)
		return tx.OutboxAppend(ctx, persistence.OutboxEvent{ID: id, CreatedAt: base})
	}
	want := func(what string, n int, ids []string) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		if len(calls) != n {
			t.Fatalf("%s: AfterOutboxCommit called %d times, want %d", what, len(calls), n)
		}
		if got := calls[n-1]; !slices.Equal(got, ids) {
			t.Fatalf("%s: AfterOutboxCommit given ids %v, want %v", what, got, ids)
		}
	}
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error { appended = nil; return appendEvent(ctx, tx) })
	first := appended
	want("after a committed append", 1, first)
	wantErr(t, "failed fn", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		if err := appendEvent(ctx, tx); err != nil {
			return err
		}
		return errBoom
	}), errBoom)
	want("after a rolled back append", 1, first)
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.OutboxPending(ctx, 10)
		return err
	})
	want("after a transaction without append", 1, first)
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		appended = nil
		if err := appendEvent(ctx, tx); err != nil {
			return err
		}
		return appendEvent(ctx, tx)
	})
	want("after a commit with two appends", 2, appended)
}
