package storetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/spa-engine/spa/persistence"
)

// totpKioskTests are the conformance tests of persistence.TOTPStore and
// persistence.KioskStore.
var totpKioskTests = []struct {
	name string
	fn   func(*testing.T, Opener)
}{
	{"TOTPFactor", testTOTPFactor},
	{"TOTPFactorRace", testTOTPFactorRace},
	{"MFAChallenge", testMFAChallenge},
	{"TOTPFactorListAfter", testTOTPFactorListAfter},
	{"MFAChallengeDeleteExpired", testMFAChallengeDeleteExpired},
	{"Kiosks", testKiosks},
}

func testTOTPFactor(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	uid := newID()
	f := persistence.TOTPFactor{UserID: uid, SecretCipher: []byte("sealed"), CreatedAt: base}
	var stored persistence.TOTPFactor
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.TOTPFactorGet(ctx, uid)
		wantErr(t, "get absent", err, persistence.ErrNotFound)
		stored, err = tx.TOTPFactorPut(ctx, f)
		return err
	})
	wantEqual(t, "version after insert", stored.Version, int64(1))
	err := txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.TOTPFactorPut(ctx, f) // version 0 again: exists
		return err
	})
	wantErr(t, "second insert", err, persistence.ErrConflict)

	// Confirm with a recovery set, a step and a lockout; read it back.
	next := stored
	next.ConfirmedAt, next.LastStep, next.Recovery = base.Add(time.Minute), 58_000_000, []byte(`{"codes":[]}`)
	next.Failures, next.LockedUntil, next.UpdatedAt = 5, base.Add(time.Hour), base.Add(time.Minute)
	next.EnrolmentKey = []byte{7, 7, 7}
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		var err error
		stored, err = tx.TOTPFactorPut(ctx, next)
		return err
	})
	var got persistence.TOTPFactor
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		var err error
		got, err = tx.TOTPFactorGet(ctx, uid)
		return err
	})
	want := next
	want.ConfirmedAt, want.LockedUntil, want.CreatedAt, want.UpdatedAt = ct(next.ConfirmedAt), ct(next.LockedUntil), ct(base), ct(next.UpdatedAt)
	want.Version = 2
	wantEqual(t, "factor", got, want)
	if !got.Confirmed() {
		t.Fatal("confirmed factor reports unconfirmed")
	}

	// A stale version loses.
	err = txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.TOTPFactorPut(ctx, next) // version 1, stored is 2
		return err
	})
	wantErr(t, "stale put", err, persistence.ErrConflict)

	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error { return tx.TOTPFactorDelete(ctx, uid) })
	err = txErr(t, s, func(ctx context.Context, tx persistence.Tx) error { return tx.TOTPFactorDelete(ctx, uid) })
	wantErr(t, "delete absent", err, persistence.ErrNotFound)

	err = txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.TOTPFactorPut(ctx, persistence.TOTPFactor{UserID: uid, CreatedAt: base})
		return err
	})
	wantErr(t, "empty secret", err, persistence.ErrInvalid)
}

// testTOTPFactorRace: writers that all read the same version race to
// record an accepted step; exactly one may win, which is what makes a TOTP
// code single-use across nodes.
func testTOTPFactorRace(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	uid := newID()
	var start persistence.TOTPFactor
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		var err error
		start, err = tx.TOTPFactorPut(ctx, persistence.TOTPFactor{UserID: uid, SecretCipher: []byte("x"), CreatedAt: base, ConfirmedAt: base})
		return err
	})
	const racers = 6
	var wg sync.WaitGroup
	results := make([]error, racers)
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := start
			next.LastStep = int64(100 + i)
			results[i] = s.InTx(context.Background(), func(tx persistence.Tx) error {
				_, err := tx.TOTPFactorPut(context.Background(), next)
				return err
			})
		}()
	}
	wg.Wait()
	won, winner := 0, -1
	for i, err := range results {
		switch {
		case err == nil:
			won, winner = won+1, i
		case !errors.Is(err, persistence.ErrConflict):
			t.Fatalf("racer %d: %v", i, err)
		}
	}
	if won != 1 {
		t.Fatalf("%d writers won, want exactly 1", won)
	}
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		f, err := tx.TOTPFactorGet(ctx, uid)
		if err == nil {
			wantEqual(t, "winner's step", f.LastStep, int64(100+winner))
			wantEqual(t, "version", f.Version, int64(2))
		}
		return err
	})
}

func testMFAChallenge(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	h := sha256.Sum256([]byte(newID()))
	c := persistence.MFAChallenge{Hash: h[:], UserID: newID(), Device: "phone", UserAgent: "ua", IP: "10.0.0.1",
		CreatedAt: base, ExpiresAt: base.Add(5 * time.Minute)}
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error { return tx.MFAChallengeCreate(ctx, c) })
	err := txErr(t, s, func(ctx context.Context, tx persistence.Tx) error { return tx.MFAChallengeCreate(ctx, c) })
	wantErr(t, "duplicate", err, persistence.ErrConflict)
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		got, err := tx.MFAChallengeGet(ctx, h[:])
		want := c
		want.CreatedAt, want.ExpiresAt = ct(c.CreatedAt), ct(c.ExpiresAt)
		wantEqual(t, "challenge", got, want)
		return err
	})
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		return tx.MFAChallengeUse(ctx, h[:], base.Add(time.Minute))
	})
	err = txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		return tx.MFAChallengeUse(ctx, h[:], base.Add(2*time.Minute))
	})
	wantErr(t, "second use", err, persistence.ErrConflict)
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		got, err := tx.MFAChallengeGet(ctx, h[:])
		wantEqual(t, "used at", got.UsedAt, ct(base.Add(time.Minute)))
		return err
	})
	other := sha256.Sum256([]byte("absent"))
	err = txErr(t, s, func(ctx context.Context, tx persistence.Tx) error { return tx.MFAChallengeUse(ctx, other[:], base) })
	wantErr(t, "use absent", err, persistence.ErrNotFound)
}

// testTOTPFactorListAfter: the rotation's paging visits every factor once,
// in user id order, and refuses a limit out of range.
func testTOTPFactorListAfter(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	ids := []string{newID(), newID(), newID()} // ULIDs: increasing
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		for i, id := range ids {
			f := persistence.TOTPFactor{UserID: id, SecretCipher: []byte{byte(i + 1)}, LastStep: int64(i), CreatedAt: base}
			if _, err := tx.TOTPFactorPut(ctx, f); err != nil {
				return err
			}
		}
		return nil
	})
	var seen []string
	after := ""
	for range 4 {
		var page []persistence.TOTPFactor
		mustTx(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
			page, err = tx.TOTPFactorListAfter(ctx, after, 2)
			return err
		})
		if len(page) == 0 {
			break
		}
		for _, f := range page {
			seen = append(seen, f.UserID)
			if f.Version != 1 || len(f.SecretCipher) != 1 || !f.CreatedAt.Equal(ct(base)) {
				t.Fatalf("listed factor %+v", f)
			}
		}
		after = page[len(page)-1].UserID
	}
	wantEqual(t, "listed ids", seen, ids)
	err := txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.TOTPFactorListAfter(ctx, "", 0)
		return err
	})
	wantErr(t, "zero limit", err, persistence.ErrInvalid)
}

// testMFAChallengeDeleteExpired: expired challenges, used or not, go in
// batches of at most limit; live ones stay.
func testMFAChallengeDeleteExpired(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	mk := func(expires time.Time) []byte {
		h := sha256.Sum256([]byte(newID()))
		mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
			return tx.MFAChallengeCreate(ctx, persistence.MFAChallenge{Hash: h[:], UserID: newID(), CreatedAt: expires.Add(-5 * time.Minute), ExpiresAt: expires})
		})
		return h[:]
	}
	old1, old2, used := mk(base.Add(time.Minute)), mk(base.Add(2*time.Minute)), mk(base.Add(3*time.Minute))
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		return tx.MFAChallengeUse(ctx, used, base.Add(time.Minute))
	})
	live := mk(base.Add(time.Hour))
	now := base.Add(10 * time.Minute)
	var n1, n2, n3 int
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
		n1, err = tx.MFAChallengeDeleteExpired(ctx, now, 2)
		return err
	})
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
		n2, err = tx.MFAChallengeDeleteExpired(ctx, now, 2)
		return err
	})
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
		n3, err = tx.MFAChallengeDeleteExpired(ctx, now, 2)
		return err
	})
	wantEqual(t, "deleted per batch", []int{n1, n2, n3}, []int{2, 1, 0})
	for _, h := range [][]byte{old1, old2, used} {
		err := txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
			_, err := tx.MFAChallengeGet(ctx, h)
			return err
		})
		wantErr(t, "expired challenge", err, persistence.ErrNotFound)
	}
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.MFAChallengeGet(ctx, live)
		return err
	})
}

func testKiosks(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	now := base.Add(time.Hour)
	a := persistence.Kiosk{ID: newID(), Label: "front desk", CreatedBy: "admin-1", CreatedAt: base, ExpiresAt: base.Add(24 * time.Hour)}
	b := persistence.Kiosk{ID: newID(), Label: "old", CreatedBy: "admin-1", CreatedAt: base, ExpiresAt: base.Add(30 * time.Minute)}
	c := persistence.Kiosk{ID: newID(), Label: "lobby", CreatedBy: "admin-2", CreatedAt: base, ExpiresAt: base.Add(24 * time.Hour)}
	var before int
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
		before, err = tx.KioskCountLive(ctx, now)
		return err
	})
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		for _, k := range []persistence.Kiosk{a, b, c} {
			if err := tx.KioskCreate(ctx, k); err != nil {
				return err
			}
		}
		return nil
	})
	err := txErr(t, s, func(ctx context.Context, tx persistence.Tx) error { return tx.KioskCreate(ctx, a) })
	wantErr(t, "duplicate", err, persistence.ErrConflict)
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		ok, err := tx.KioskRevoke(ctx, c.ID, now)
		if err != nil || !ok {
			t.Fatalf("revoke: %v %v", ok, err)
		}
		ok, err = tx.KioskRevoke(ctx, c.ID, now.Add(time.Minute))
		if err != nil || ok {
			t.Fatalf("second revoke: %v %v", ok, err)
		}
		_, err = tx.KioskRevoke(ctx, newID(), now)
		wantErr(t, "revoke absent", err, persistence.ErrNotFound)
		return nil
	})
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		got, err := tx.KioskGet(ctx, c.ID)
		if err != nil {
			return err
		}
		wantEqual(t, "revoked at", got.RevokedAt, ct(now))
		if got.Live(now) {
			t.Fatal("revoked kiosk reports live")
		}
		live, err := tx.KioskList(ctx, now, false, persistence.MaxKioskListLimit)
		if err != nil {
			return err
		}
		ids := map[string]bool{}
		for _, k := range live {
			ids[k.ID] = true
		}
		if !ids[a.ID] || ids[b.ID] || ids[c.ID] {
			t.Fatalf("live list %v: want a only of a, b, c", ids)
		}
		all, err := tx.KioskList(ctx, now, true, persistence.MaxKioskListLimit)
		if err != nil {
			return err
		}
		if len(all) < 3 {
			t.Fatalf("all list has %d kiosks", len(all))
		}
		n, err := tx.KioskCountLive(ctx, now)
		wantEqual(t, "live count", n, before+1)
		_, lerr := tx.KioskList(ctx, now, false, 0)
		wantErr(t, "zero limit", lerr, persistence.ErrInvalid)
		return err
	})
	err = txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		return tx.KioskCreate(ctx, persistence.Kiosk{ID: newID(), CreatedAt: base, ExpiresAt: base})
	})
	wantErr(t, "expiry not after creation", err, persistence.ErrInvalid)
}
