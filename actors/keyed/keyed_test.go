package keyed_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/auth/pii"
	"github.com/spa-engine/spa/actors/keyed"
	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/sqlite/sqlitetest"
)

// answer stands for an actor's reply (an appointment, a cart): what a
// Book remembers is whatever JSON carries.
type answer struct {
	ID     string
	Client string
}

const owner = "staff/ana"

var now = time.Date(2026, 12, 1, 13, 0, 0, 0, time.UTC)

func keyring(t *testing.T) *pii.Keyring {
	t.Helper()
	k, err := pii.NewKeyring(pii.KeyringConfig{Primary: "k1", Keys: map[string][]byte{"k1": bytes.Repeat([]byte{7}, pii.KeyLen)}})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func key(name, request string) *keyed.Key {
	return &keyed.Key{Scope: "sub:maria", Name: name, Hash: []byte("hash of " + request)}
}

// load is a fresh activation's Book: what owner stored and has not expired at.
func load(t *testing.T, st persistence.Store, cfg keyed.Config, owner string, at time.Time) *keyed.Book[answer] {
	t.Helper()
	var b keyed.Book[answer]
	if err := st.InTx(context.Background(), func(tx persistence.Tx) (err error) {
		b, err = keyed.Load[answer](context.Background(), tx, cfg, owner, at)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return &b
}

// commit runs write in a transaction of its own, as a batch would.
func commit(st persistence.Store, write func(context.Context, persistence.Tx) error) error {
	return st.InTx(context.Background(), func(tx persistence.Tx) error { return write(context.Background(), tx) })
}

func stored(t *testing.T, st persistence.Store, k *keyed.Key, at time.Time) persistence.IdempotencyRecord {
	t.Helper()
	var r persistence.IdempotencyRecord
	if err := st.InTx(context.Background(), func(tx persistence.Tx) (err error) {
		r, err = tx.IdempotencyGet(context.Background(), k.Scope, k.Name, at)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRememberedAnswerIsSealedAndLoadsAgain: an answer remembered and
// written is found by the next activation's Book; its stored body is
// ciphertext (it may carry personal data) and opens to the answer.
func TestRememberedAnswerIsSealedAndLoadsAgain(t *testing.T) {
	st := sqlitetest.Open(t, persistence.Options{})
	cfg := keyed.Config{Seal: keyring(t)}
	k := key("k1", "hold 10:00")
	want := answer{ID: "apt_1", Client: "maria.perez@example.com"}

	first := load(t, st, cfg, owner, now)
	if err := commit(st, first.Remember(k, want, now)); err != nil {
		t.Fatal(err)
	}
	// The activation that remembered it finds it before and after the write.
	if got, found, err := first.Find(k, now); err != nil || !found || got != want {
		t.Fatalf("same book: %+v found=%v err=%v", got, found, err)
	}

	got, found, err := load(t, st, cfg, owner, now.Add(time.Minute)).Find(k, now.Add(time.Minute))
	if err != nil || !found || got != want {
		t.Fatalf("fresh book: %+v found=%v err=%v", got, found, err)
	}

	rec := stored(t, st, k, now)
	if rec.Owner != owner || rec.State != persistence.IdempotencyCompleted || rec.ResponseContentType != keyed.ContentType {
		t.Fatalf("record %+v", rec)
	}
	if bytes.Contains(rec.ResponseBody, []byte("maria.perez")) || bytes.Contains(rec.ResponseBody, []byte("apt_1")) ||
		rec.ResponseBody[0] != pii.Version {
		t.Fatalf("stored body is not sealed: %q", rec.ResponseBody)
	}
	body, err := keyed.Open(cfg.Seal, k.Scope, k.Name, rec.ResponseBody)
	if err != nil {
		t.Fatal(err)
	}
	var opened answer
	if err := json.Unmarshal(body, &opened); err != nil || opened != want {
		t.Fatalf("opened %q: %+v, %v", body, opened, err)
	}
	// The seal is bound to its row: a body copied under another key does not open.
	if _, err := keyed.Open(cfg.Seal, k.Scope, "another", rec.ResponseBody); err == nil {
		t.Fatal("a sealed body opened under another key")
	}
}

// TestFindRefusesAnotherRequestUnderTheKey: the same key with another
// fingerprint is ErrReused, in the activation that answered and in the
// next one.
func TestFindRefusesAnotherRequestUnderTheKey(t *testing.T) {
	st := sqlitetest.Open(t, persistence.Options{})
	b := load(t, st, keyed.Config{}, owner, now)
	if err := commit(st, b.Remember(key("k1", "hold 10:00"), answer{ID: "apt_1"}, now)); err != nil {
		t.Fatal(err)
	}
	other := key("k1", "hold 12:00")
	for name, book := range map[string]*keyed.Book[answer]{"same": b, "fresh": load(t, st, keyed.Config{}, owner, now)} {
		if got, found, err := book.Find(other, now); !found || !errors.Is(err, keyed.ErrReused) || got != (answer{}) {
			t.Fatalf("%s book: %+v found=%v err=%v, want ErrReused", name, got, found, err)
		}
	}
	// Another key, and no key, find nothing.
	if _, found, err := b.Find(key("k2", "hold 10:00"), now); found || err != nil {
		t.Fatalf("another key: found=%v err=%v", found, err)
	}
	if _, found, err := b.Find(nil, now); found || err != nil {
		t.Fatalf("no key: found=%v err=%v", found, err)
	}
}

// TestAnswersExpire: after the TTL an answer is neither found nor loaded,
// and its key may be answered again, by anyone.
func TestAnswersExpire(t *testing.T) {
	st := sqlitetest.Open(t, persistence.Options{})
	cfg := keyed.Config{TTL: time.Hour}
	k := key("k1", "hold 10:00")
	b := load(t, st, cfg, owner, now)
	if err := commit(st, b.Remember(k, answer{ID: "apt_1"}, now)); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := b.Find(k, now.Add(59*time.Minute)); !found {
		t.Fatal("answer lost before its TTL")
	}
	later := now.Add(time.Hour + time.Minute)
	if got, found, err := b.Find(k, later); found || err != nil {
		t.Fatalf("expired answer found: %+v, %v", got, err)
	}
	if got, found, err := load(t, st, cfg, owner, later).Find(k, later); found || err != nil {
		t.Fatalf("expired answer loaded: %+v, %v", got, err)
	}
	// An expired record is replaced, even by another owner.
	if err := commit(st, func(ctx context.Context, tx persistence.Tx) error {
		return keyed.Write(ctx, tx, cfg, "staff/bob", k, answer{ID: "apt_2"}, later)
	}); err != nil {
		t.Fatalf("write over an expired record: %v", err)
	}
	if rec := stored(t, st, k, later); rec.Owner != "staff/bob" {
		t.Fatalf("record after the takeover: %+v", rec)
	}
}

// TestWriteRefusesAKeyHeldElsewhere: a live record of another owner wins;
// the write refuses with ErrElsewhere and leaves that record as it was.
func TestWriteRefusesAKeyHeldElsewhere(t *testing.T) {
	st := sqlitetest.Open(t, persistence.Options{})
	k := key("k1", "hold 10:00")
	write := func(owner string, a answer) error {
		return commit(st, func(ctx context.Context, tx persistence.Tx) error {
			return keyed.Write(ctx, tx, keyed.Config{}, owner, k, a, now)
		})
	}
	if err := write("staff/other", answer{ID: "theirs"}); err != nil {
		t.Fatal(err)
	}
	if err := write(owner, answer{ID: "ours"}); !errors.Is(err, keyed.ErrElsewhere) {
		t.Fatalf("second owner's write: %v, want ErrElsewhere", err)
	}
	// Through a Book too: the op of the change fails, so its batch does.
	b := load(t, st, keyed.Config{}, owner, now)
	if err := commit(st, b.Remember(k, answer{ID: "ours"}, now)); !errors.Is(err, keyed.ErrElsewhere) {
		t.Fatalf("remembered write: %v, want ErrElsewhere", err)
	}
	rec := stored(t, st, k, now)
	if rec.Owner != "staff/other" || !bytes.Contains(rec.ResponseBody, []byte("theirs")) {
		t.Fatalf("the first owner's record changed: %+v", rec)
	}
	if got, err := keyed.Lookup[answer](context.Background(), st, keyed.Config{}, k, now); err != nil || got.ID != "theirs" {
		t.Fatalf("lookup after ErrElsewhere: %+v, %v", got, err)
	}
}

// TestStoredAndLookup: what a caller reads after ErrElsewhere. An actor's
// answer for the same request is the answer; another request under the key
// is ErrReused; no record, or the edge's record of the same request (the
// edge answers that one), leaves the caller undecided.
func TestStoredAndLookup(t *testing.T) {
	st := sqlitetest.Open(t, persistence.Options{})
	ctx := context.Background()
	cfg := keyed.Config{Seal: keyring(t)}
	lookup := func(k *keyed.Key) (answer, error) { return keyed.Lookup[answer](ctx, st, cfg, k, now) }

	missing := key("none", "hold 10:00")
	if _, err := lookup(missing); !errors.Is(err, keyed.ErrUndecided) {
		t.Fatalf("lookup of an unknown key: %v, want ErrUndecided", err)
	}
	if err := st.InTx(ctx, func(tx persistence.Tx) error {
		_, found, err := keyed.Stored[answer](ctx, tx, cfg, missing, now)
		if found || err != nil {
			t.Errorf("stored of an unknown key: found=%v err=%v", found, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	edge := key("edge", "POST /v1/studio")
	for _, state := range []persistence.IdempotencyState{persistence.IdempotencyInProgress, persistence.IdempotencyCompleted} {
		if err := st.InTx(ctx, func(tx persistence.Tx) error {
			return tx.IdempotencyPut(ctx, persistence.IdempotencyRecord{Scope: edge.Scope, Key: edge.Name, RequestHash: edge.Hash,
				State: state, ResponseStatus: 200, ResponseBody: []byte(`{"ok":true}`), CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := lookup(edge); !errors.Is(err, keyed.ErrUndecided) {
			t.Fatalf("edge record (%s) of the same request: %v, want ErrUndecided", state, err)
		}
		if _, err := lookup(key("edge", "POST /v1/other")); !errors.Is(err, keyed.ErrReused) {
			t.Fatalf("edge record (%s) of another request: %v, want ErrReused", state, err)
		}
	}

	mine := key("mine", "hold 10:00")
	if err := commit(st, func(ctx context.Context, tx persistence.Tx) error {
		return keyed.Write(ctx, tx, cfg, owner, mine, answer{ID: "apt_1"}, now)
	}); err != nil {
		t.Fatal(err)
	}
	if got, err := lookup(mine); err != nil || got.ID != "apt_1" {
		t.Fatalf("lookup of an actor's answer: %+v, %v", got, err)
	}
	if _, err := lookup(key("mine", "hold 12:00")); !errors.Is(err, keyed.ErrReused) {
		t.Fatalf("actor's answer, another request: %v, want ErrReused", err)
	}
}

// TestOpenPassesUnsealedBodies: bodies stored before sealing was on are
// read as they are, with or without a key configured; a sealed body
// without one is an error, not ciphertext handed out as an answer.
func TestOpenPassesUnsealedBodies(t *testing.T) {
	ring := keyring(t)
	legacy := []byte(`{"id":"apt_1","client":"maria"}`)
	for name, s := range map[string]keyed.Sealer{"with a keyring": ring, "without": nil} {
		got, err := keyed.Open(s, "sub:maria", "k1", legacy)
		if err != nil || !bytes.Equal(got, legacy) {
			t.Fatalf("%s: %q, %v", name, got, err)
		}
	}
	if got, err := keyed.Open(ring, "sub:maria", "k1", nil); err != nil || len(got) != 0 {
		t.Fatalf("empty body: %q, %v", got, err)
	}
	sealed, err := keyed.Seal(ring, "sub:maria", "k1", legacy)
	if err != nil || bytes.Equal(sealed, legacy) {
		t.Fatalf("seal: %q, %v", sealed, err)
	}
	if _, err := keyed.Open(nil, "sub:maria", "k1", sealed); err == nil {
		t.Fatal("a sealed body opened without a keyring")
	}
	// A legacy actor answer loads too.
	st := sqlitetest.Open(t, persistence.Options{})
	k := key("old", "hold 10:00")
	if err := st.InTx(context.Background(), func(tx persistence.Tx) error {
		return tx.IdempotencyPut(context.Background(), persistence.IdempotencyRecord{Scope: k.Scope, Key: k.Name, Owner: owner,
			RequestHash: k.Hash, State: persistence.IdempotencyCompleted, ResponseContentType: keyed.ContentType,
			ResponseBody: []byte(`{"ID":"apt_old"}`), CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
	}); err != nil {
		t.Fatal(err)
	}
	if got, found, err := load(t, st, keyed.Config{Seal: ring}, owner, now).Find(k, now); err != nil || !found || got.ID != "apt_old" {
		t.Fatalf("legacy record: %+v found=%v err=%v", got, found, err)
	}
}
