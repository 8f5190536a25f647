package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/spa-engine/spa/persistence"
)

// legalTests covers legal documents, consents and the blocklist.
var legalTests = []struct {
	name string
	fn   func(*testing.T, Opener)
}{
	{"LegalDocuments", testLegalDocuments},
	{"LegalConsents", testLegalConsents},
	{"LegalActivateConcurrent", testLegalActivateConcurrent},
	{"Blocks", testBlocks},
}

func legalDoc(slug, title string) persistence.LegalDocument {
	return persistence.LegalDocument{Slug: slug, Title: title, Body: title + "\nline two\n", CreatedBy: "admin-1", CreatedAt: base}
}

func testLegalDocuments(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	var v1, v2, p1 persistence.LegalDocument
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
		if v1, err = tx.LegalDocumentCreate(ctx, legalDoc("terms", "Terms 1")); err != nil {
			return err
		}
		if v2, err = tx.LegalDocumentCreate(ctx, legalDoc("terms", "Terms 2")); err != nil {
			return err
		}
		p1, err = tx.LegalDocumentCreate(ctx, legalDoc("privacy", "Privacy 1"))
		return err
	})
	if v1.Version != 1 || v2.Version != 2 || p1.Version != 1 || v1.Active || !v1.CreatedAt.Equal(ct(base)) {
		t.Fatalf("created %+v, %+v, %+v", v1, v2, p1)
	}
	for _, bad := range []persistence.LegalDocument{
		legalDoc("Terms", "x"), legalDoc("terms-", "x"), legalDoc("", "x"),
		{Slug: "terms", Title: "no body", CreatedAt: base},
	} {
		wantErr(t, fmt.Sprintf("create %q", bad.Slug), txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
			_, err := tx.LegalDocumentCreate(ctx, bad)
			return err
		}), persistence.ErrInvalid)
	}

	var active []persistence.LegalDocument
	read := func() {
		t.Helper()
		mustTx(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
			active, err = tx.LegalActive(ctx)
			return err
		})
	}
	read()
	wantEqual(t, "active before activation", len(active), 0)

	at := base.Add(time.Hour)
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		got, err := tx.LegalDocumentActivate(ctx, "terms", 1, at)
		if err != nil || !got.Active || !got.ActivatedAt.Equal(ct(at)) {
			return fmt.Errorf("activate 1: %+v, %v", got, err)
		}
		_, err = tx.LegalDocumentActivate(ctx, "privacy", 1, at)
		return err
	})
	read()
	if len(active) != 2 || active[0].Slug != "privacy" || active[1].Slug != "terms" || active[1].Version != 1 {
		t.Fatalf("active after first activations: %+v", active)
	}
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.LegalDocumentActivate(ctx, "terms", 2, at.Add(time.Minute))
		return err
	})
	read()
	if len(active) != 2 || active[1].Version != 2 || active[1].Title != "Terms 2" {
		t.Fatalf("active after moving terms to 2: %+v", active)
	}
	// Activating the active version again changes nothing (not even the time).
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		got, err := tx.LegalDocumentActivate(ctx, "terms", 2, at.Add(time.Hour))
		if err == nil && !got.ActivatedAt.Equal(ct(at.Add(time.Minute))) {
			err = fmt.Errorf("re-activation moved the time: %+v", got)
		}
		return err
	})
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		vs, err := tx.LegalDocumentVersions(ctx, "terms")
		if err != nil {
			return err
		}
		if len(vs) != 2 || vs[0].Active || !vs[1].Active || !vs[0].ActivatedAt.Equal(ct(at)) {
			return fmt.Errorf("versions: %+v", vs)
		}
		got, err := tx.LegalDocumentGet(ctx, "terms", 1)
		if err != nil || got.Body != "Terms 1\nline two\n" || got.CreatedBy != "admin-1" {
			return fmt.Errorf("get: %+v, %v", got, err)
		}
		if vs, err := tx.LegalDocumentVersions(ctx, "unknown"); err != nil || len(vs) != 0 {
			return fmt.Errorf("versions of an unknown slug: %v, %v", vs, err)
		}
		return nil
	})
	wantErr(t, "activate missing", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.LegalDocumentActivate(ctx, "terms", 3, at)
		return err
	}), persistence.ErrNotFound)
	wantErr(t, "get missing", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.LegalDocumentGet(ctx, "nope", 1)
		return err
	}), persistence.ErrNotFound)
	wantErr(t, "get version 0", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.LegalDocumentGet(ctx, "terms", 0)
		return err
	}), persistence.ErrInvalid)
}

func testLegalConsents(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		for _, slug := range []string{"terms", "terms", "privacy", "consent-massage"} {
			if _, err := tx.LegalDocumentCreate(ctx, legalDoc(slug, slug)); err != nil {
				return err
			}
		}
		for _, slug := range []string{"terms", "privacy", "consent-massage"} {
			if _, err := tx.LegalDocumentActivate(ctx, slug, 1, base); err != nil {
				return err
			}
		}
		return nil
	})
	required := func(kind persistence.ConsentSubjectKind, id string, slugs ...string) []string {
		t.Helper()
		var docs []persistence.LegalDocument
		mustTx(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
			docs, err = tx.LegalRequired(ctx, kind, id, slugs)
			return err
		})
		out := []string{}
		for _, d := range docs {
			out = append(out, fmt.Sprintf("%s@%d", d.Slug, d.Version))
		}
		return out
	}
	consent := func(kind persistence.ConsentSubjectKind, id, slug string, version int64) (persistence.LegalConsent, bool, error) {
		var c persistence.LegalConsent
		var created bool
		err := txErr(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
			c, created, err = tx.LegalConsentAdd(ctx, persistence.LegalConsent{
				ID: newID(), SubjectKind: kind, SubjectID: id, Slug: slug, Version: version,
				AcceptedAt: base, RequestID: "req-" + slug,
			})
			return err
		})
		return c, created, err
	}
	user, device := persistence.ConsentUser, persistence.ConsentDevice

	wantEqual(t, "required of a new user", required(user, "u1"), []string{"consent-massage@1", "privacy@1", "terms@1"})
	wantEqual(t, "required restricted", required(user, "u1", "terms", "privacy", "absent"), []string{"privacy@1", "terms@1"})

	first, created, err := consent(user, "u1", "terms", 1)
	if err != nil || !created || first.AcceptedAt != ct(base) {
		t.Fatalf("consent: %+v, %v, %v", first, created, err)
	}
	again, created, err := consent(user, "u1", "terms", 1)
	if err != nil || created || again.ID != first.ID {
		t.Fatalf("repeated consent: %+v (first %s), %v, %v", again, first.ID, created, err)
	}
	if _, _, err := consent(device, "u1", "privacy", 1); err != nil { // same id, other kind
		t.Fatal(err)
	}
	wantEqual(t, "required after terms", required(user, "u1"), []string{"consent-massage@1", "privacy@1"})
	wantEqual(t, "device with the same id", required(device, "u1"), []string{"consent-massage@1", "terms@1"})

	// A new active version makes terms required again; the old consent stays.
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.LegalDocumentActivate(ctx, "terms", 2, base.Add(time.Hour))
		return err
	})
	wantEqual(t, "required after terms v2", required(user, "u1"), []string{"consent-massage@1", "privacy@1", "terms@2"})
	if _, _, err := consent(user, "u1", "terms", 2); err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "required after accepting v2", required(user, "u1", "terms"), []string{})

	_, _, err = consent(user, "u1", "terms", 9)
	wantErr(t, "consent to a missing version", err, persistence.ErrNotFound)
	_, _, err = consent("robot", "u1", "terms", 1)
	wantErr(t, "unknown subject kind", err, persistence.ErrInvalid)
	_, _, err = consent(user, "", "terms", 1)
	wantErr(t, "empty subject", err, persistence.ErrInvalid)

	list := func(p persistence.LegalConsentListParams) []persistence.LegalConsent {
		t.Helper()
		var out []persistence.LegalConsent
		mustTx(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
			out, err = tx.LegalConsentList(ctx, p)
			return err
		})
		return out
	}
	all := list(persistence.LegalConsentListParams{Limit: 10})
	if len(all) != 3 || all[0].ID <= all[1].ID || all[1].ID <= all[2].ID {
		t.Fatalf("list all: %+v", all)
	}
	if got := list(persistence.LegalConsentListParams{Slug: "terms", Version: 1, Limit: 10}); len(got) != 1 || got[0].ID != first.ID {
		t.Fatalf("list terms@1: %+v", got)
	}
	if got := list(persistence.LegalConsentListParams{SubjectKind: device, SubjectID: "u1", Limit: 10}); len(got) != 1 || got[0].Slug != "privacy" {
		t.Fatalf("list device u1: %+v", got)
	}
	if got := list(persistence.LegalConsentListParams{BeforeID: all[0].ID, Limit: 1}); len(got) != 1 || got[0].ID != all[1].ID {
		t.Fatalf("second page: %+v", got)
	}
	// Signing in on the device carries its consents over to the user.
	var adopted int
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
		adopted, err = persistence.LegalConsentAdopt(ctx, tx, "u1", "u2", newID)
		return err
	})
	if adopted != 1 {
		t.Fatalf("adopted %d consents, want 1", adopted)
	}
	wantEqual(t, "required of the adopting user", required(user, "u2"), []string{"consent-massage@1", "terms@2"})
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
		adopted, err = persistence.LegalConsentAdopt(ctx, tx, "u1", "u2", newID)
		return err
	})
	if adopted != 0 {
		t.Fatalf("adopting again copied %d", adopted)
	}

	wantErr(t, "list limit 0", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.LegalConsentList(ctx, persistence.LegalConsentListParams{})
		return err
	}), persistence.ErrInvalid)
	wantErr(t, "list version without slug", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.LegalConsentList(ctx, persistence.LegalConsentListParams{Version: 1, Limit: 1})
		return err
	}), persistence.ErrInvalid)
}

// legalOp is one operation of the activation history: activate version V,
// or read the active version (V 0 on input).
type legalOp struct {
	activate bool
	slug     string
	version  int64
}

// activeModel: each slug is a register holding its active version (0 for
// none). An activation sets it; a read must return it.
var activeModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		var order []string
		for _, op := range h {
			s := op.Input.(legalOp).slug
			if _, ok := by[s]; !ok {
				order = append(order, s)
			}
			by[s] = append(by[s], op)
		}
		out := make([][]porcupine.Operation, 0, len(order))
		for _, s := range order {
			out = append(out, by[s])
		}
		return out
	},
	Init: func() any { return int64(0) },
	Step: func(state, input, output any) (bool, any) {
		in := input.(legalOp)
		if in.activate {
			return true, in.version
		}
		return output.(int64) == state.(int64), state
	},
	DescribeOperation: func(input, output any) string {
		in := input.(legalOp)
		if in.activate {
			return fmt.Sprintf("activate %s@%d", in.slug, in.version)
		}
		return fmt.Sprintf("read %s → %v", in.slug, output)
	},
}

// testLegalActivateConcurrent races activations and reads of two slugs
// from several handles, checks that every read saw exactly one active
// version per activated slug, and checks the recorded history for
// linearizability: the active version behaves as one register per slug.
func testLegalActivateConcurrent(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	slugs := []string{"terms", "privacy"}
	const versions = 4
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		for _, slug := range slugs {
			for range versions {
				if _, err := tx.LegalDocumentCreate(ctx, legalDoc(slug, slug)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	const clients, opsPerClient = 6, 12
	t0 := time.Now()
	var mu sync.Mutex
	var history []porcupine.Operation
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := range clients {
		h := open(t, persistence.Options{})
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 7))
			for range opsPerClient {
				in := legalOp{activate: rng.IntN(2) == 0, slug: slugs[rng.IntN(len(slugs))]}
				if in.activate {
					in.version = 1 + rng.Int64N(versions)
				}
				var out int64
				call := time.Since(t0).Nanoseconds()
				err := h.InTx(t.Context(), func(tx persistence.Tx) error {
					ctx := t.Context()
					if in.activate {
						_, err := tx.LegalDocumentActivate(ctx, in.slug, in.version, base)
						return err
					}
					active, err := tx.LegalActive(ctx)
					if err != nil {
						return err
					}
					out = 0
					for _, d := range active {
						if d.Slug != in.slug {
							continue
						}
						if out != 0 {
							return fmt.Errorf("two active versions of %s: %d and %d", d.Slug, out, d.Version)
						}
						out = d.Version
					}
					return nil
				})
				ret := time.Since(t0).Nanoseconds()
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				history = append(history, porcupine.Operation{ClientId: c, Input: in, Call: call, Output: out, Return: ret})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(history) != clients*opsPerClient {
		t.Fatalf("recorded %d operations, want %d", len(history), clients*opsPerClient)
	}
	if res := porcupine.CheckOperations(activeModel, history); !res {
		t.Fatalf("activation history is not linearizable (%d operations)", len(history))
	}
	// The model must be able to fail: a read of a version never activated
	// cannot be explained.
	bad := append([]porcupine.Operation{}, history...)
	end := time.Since(t0).Nanoseconds()
	bad = append(bad, porcupine.Operation{ClientId: clients, Input: legalOp{slug: "terms"}, Call: end + 1, Output: int64(versions + 1), Return: end + 2})
	if porcupine.CheckOperations(activeModel, bad) {
		t.Fatal("a history with an impossible read passed the check")
	}
}

func testBlocks(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	ipBlock := persistence.Block{ID: newID(), Kind: persistence.BlockIP, Value: "203.0.113.0/24", Label: "203.0.113.0/24",
		Reason: "scraping", CreatedBy: "admin-1", CreatedAt: base}
	phoneBlock := persistence.Block{ID: newID(), Kind: persistence.BlockPhone, Value: "ab12", Label: "+57*******67",
		Reason: "fraud", CreatedBy: "admin-1", CreatedAt: base, ExpiresAt: base.Add(time.Hour)}
	add := func(b persistence.Block) error {
		return txErr(t, s, func(ctx context.Context, tx persistence.Tx) error { return tx.BlockAdd(ctx, b) })
	}
	find := func(kind persistence.BlockKind, value string, now time.Time) (persistence.Block, error) {
		var b persistence.Block
		err := txErr(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
			b, err = tx.BlockFind(ctx, kind, value, now)
			return err
		})
		return b, err
	}
	for _, b := range []persistence.Block{ipBlock, phoneBlock} {
		if err := add(b); err != nil {
			t.Fatalf("add %s: %v", b.Kind, err)
		}
	}
	dup := ipBlock
	dup.ID = newID()
	wantErr(t, "duplicate block", add(dup), persistence.ErrConflict)

	got, err := find(persistence.BlockPhone, "ab12", base.Add(time.Minute))
	want := phoneBlock
	want.CreatedAt, want.ExpiresAt = ct(base), ct(base.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "find phone", got, want)
	_, err = find(persistence.BlockPhone, "ab12", base.Add(time.Hour))
	wantErr(t, "find at expiry", err, persistence.ErrNotFound)
	_, err = find(persistence.BlockDocument, "ab12", base)
	wantErr(t, "find other kind", err, persistence.ErrNotFound)

	// An expired block is replaced by a new one of the same value.
	renew := phoneBlock
	renew.ID, renew.CreatedAt, renew.ExpiresAt = newID(), base.Add(2*time.Hour), time.Time{}
	if err := add(renew); err != nil {
		t.Fatalf("re-add after expiry: %v", err)
	}
	if got, err := find(persistence.BlockPhone, "ab12", base.Add(100*time.Hour)); err != nil || got.ID != renew.ID {
		t.Fatalf("renewed block: %+v, %v", got, err)
	}

	list := func(p persistence.BlockListParams) []persistence.Block {
		t.Helper()
		var out []persistence.Block
		mustTx(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
			out, err = tx.BlockList(ctx, p)
			return err
		})
		return out
	}
	if got := list(persistence.BlockListParams{Limit: 10}); len(got) != 2 || got[0].ID != renew.ID || got[1].ID != ipBlock.ID {
		t.Fatalf("list: %+v", got)
	}
	if got := list(persistence.BlockListParams{Kind: persistence.BlockIP, Limit: 10}); len(got) != 1 || got[0].Value != "203.0.113.0/24" {
		t.Fatalf("list ip: %+v", got)
	}
	if got := list(persistence.BlockListParams{BeforeID: renew.ID, Limit: 10}); len(got) != 1 || got[0].ID != ipBlock.ID {
		t.Fatalf("list before: %+v", got)
	}
	expiring := persistence.Block{ID: newID(), Kind: persistence.BlockIP, Value: "2001:db8::/32", Label: "2001:db8::/32",
		Reason: "abuse", CreatedBy: "admin-1", CreatedAt: base, ExpiresAt: base.Add(time.Minute)}
	if err := add(expiring); err != nil {
		t.Fatal(err)
	}
	if got := list(persistence.BlockListParams{Kind: persistence.BlockIP, ActiveAt: base.Add(time.Hour), Limit: 10}); len(got) != 1 || got[0].ID != ipBlock.ID {
		t.Fatalf("list active: %+v", got)
	}

	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error { return tx.BlockRemove(ctx, ipBlock.ID) })
	wantErr(t, "remove again", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		return tx.BlockRemove(ctx, ipBlock.ID)
	}), persistence.ErrNotFound)
	wantErr(t, "get removed", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.BlockGet(ctx, ipBlock.ID)
		return err
	}), persistence.ErrNotFound)

	for name, b := range map[string]persistence.Block{
		"unknown kind":   {ID: newID(), Kind: "email", Value: "x", Reason: "r", CreatedAt: base},
		"host bits set":  {ID: newID(), Kind: persistence.BlockIP, Value: "203.0.113.7/24", Reason: "r", CreatedAt: base},
		"not a prefix":   {ID: newID(), Kind: persistence.BlockIP, Value: "203.0.113.7", Reason: "r", CreatedAt: base},
		"no reason":      {ID: newID(), Kind: persistence.BlockPhone, Value: "x", CreatedAt: base},
		"expiry earlier": {ID: newID(), Kind: persistence.BlockPhone, Value: "x", Reason: "r", CreatedAt: base, ExpiresAt: base},
	} {
		if err := add(b); !errors.Is(err, persistence.ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", name, err)
		}
	}
}
