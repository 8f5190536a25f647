package storetest

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/spa-engine/spa/persistence"
)

// identityTests are the conformance tests of persistence.IdentityStore.
var identityTests = []struct {
	name string
	fn   func(*testing.T, Opener)
}{
	{"IdentityUsers", testIdentityUsers},
	{"IdentityOTPState", testIdentityOTPState},
	{"IdentitySessions", testIdentitySessions},
	{"IdentityRefreshTokens", testIdentityRefreshTokens},
	{"IdentityRefreshTokenRace", testIdentityRefreshTokenRace},
}

func testIdentityUsers(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	u := persistence.User{ID: newID(), PhoneIndex: []byte{1, 2, 3}, PhoneCipher: []byte("sealed"),
		Roles: []string{"client"}, CreatedAt: base}
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error { return tx.UserCreate(ctx, u) })

	want := u
	want.CreatedAt, want.UpdatedAt = ct(base), ct(base)
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		got, err := tx.UserGet(ctx, u.ID)
		if err != nil {
			return err
		}
		wantEqual(t, "UserGet", got, want)
		got, err = tx.UserGetByPhoneIndex(ctx, []byte{1, 2, 3})
		if err != nil {
			return err
		}
		wantEqual(t, "UserGetByPhoneIndex", got, want)
		return nil
	})
	dup := u
	dup.ID = newID()
	wantErr(t, "duplicate phone index", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error { return tx.UserCreate(ctx, dup) }), persistence.ErrConflict)
	wantErr(t, "unknown index", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.UserGetByPhoneIndex(ctx, []byte{9})
		return err
	}), persistence.ErrNotFound)
	bad := u
	bad.ID, bad.PhoneIndex, bad.Roles = newID(), []byte{4}, []string{"Admin,client"}
	wantErr(t, "bad role", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error { return tx.UserCreate(ctx, bad) }), persistence.ErrInvalid)

	later := base.Add(time.Hour)
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		return tx.UserSetRoles(ctx, u.ID, []string{"client", "staff"}, later)
	})
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		got, err := tx.UserGet(ctx, u.ID)
		wantEqual(t, "roles", got.Roles, []string{"client", "staff"})
		wantEqual(t, "updated", got.UpdatedAt, ct(later))
		return err
	})
	wantErr(t, "roles of unknown user", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		return tx.UserSetRoles(ctx, "nobody", []string{"client"}, later)
	}), persistence.ErrNotFound)

	// The second factor's enrolment deadline: set, read, cleared.
	for _, due := range []time.Time{later.Add(24 * time.Hour), {}} {
		mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error { return tx.UserSetSecondFactorDue(ctx, u.ID, due) })
		mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
			got, err := tx.UserGet(ctx, u.ID)
			wantEqual(t, "second factor due", got.SecondFactorDue, ct(due))
			return err
		})
	}
	wantErr(t, "deadline of unknown user", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		return tx.UserSetSecondFactorDue(ctx, "nobody", later)
	}), persistence.ErrNotFound)
}

func testIdentityOTPState(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	wantErr(t, "absent", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.OTPStateGet(ctx, "k1")
		return err
	}), persistence.ErrNotFound)

	var stored persistence.OTPState
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		var err error
		stored, err = tx.OTPStatePut(ctx, persistence.OTPState{PhoneKey: "k1", State: []byte(`{"failures":1}`),
			LockedUntil: base.Add(time.Minute), UpdatedAt: base})
		return err
	})
	wantEqual(t, "first version", stored.Version, int64(1))
	// A second first write (another activation that loaded nothing) loses.
	wantErr(t, "insert twice", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.OTPStatePut(ctx, persistence.OTPState{PhoneKey: "k1", State: []byte(`{}`), UpdatedAt: base})
		return err
	}), persistence.ErrConflict)

	next := stored
	next.State, next.LockedUntil, next.UpdatedAt = []byte(`{"failures":2}`), time.Time{}, base.Add(time.Second)
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		var err error
		next, err = tx.OTPStatePut(ctx, next)
		return err
	})
	wantEqual(t, "second version", next.Version, int64(2))
	wantErr(t, "stale version", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.OTPStatePut(ctx, stored)
		return err
	}), persistence.ErrConflict)
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		got, err := tx.OTPStateGet(ctx, "k1")
		wantEqual(t, "read back", got, persistence.OTPState{PhoneKey: "k1", State: []byte(`{"failures":2}`),
			Version: 2, UpdatedAt: ct(base.Add(time.Second))})
		return err
	})
}

func newSession(userID string, created time.Time) persistence.Session {
	return persistence.Session{ID: newID(), UserID: userID, Device: "phone", UserAgent: "ua/1", IP: "203.0.113.7",
		CreatedAt: created, ExpiresAt: created.Add(30 * 24 * time.Hour)}
}

func testIdentitySessions(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	a, b, other := newSession("u1", base), newSession("u1", base.Add(time.Minute)), newSession("u2", base)
	expired := newSession("u1", base)
	expired.ExpiresAt = base.Add(time.Hour)
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		for _, x := range []persistence.Session{a, b, other, expired} {
			if err := tx.SessionCreate(ctx, x); err != nil {
				return err
			}
		}
		return nil
	})
	wantErr(t, "duplicate", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error { return tx.SessionCreate(ctx, a) }), persistence.ErrConflict)
	now := base.Add(2 * time.Hour)
	ids := func(ss []persistence.Session) []string {
		out := []string{}
		for _, x := range ss {
			out = append(out, x.ID)
		}
		return out
	}
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		list, err := tx.SessionListByUser(ctx, "u1", now, 10)
		wantEqual(t, "live sessions, newest seen first", ids(list), []string{b.ID, a.ID})
		if err == nil {
			want := b
			want.CreatedAt, want.LastSeenAt, want.ExpiresAt = ct(b.CreatedAt), ct(b.CreatedAt), ct(b.ExpiresAt)
			wantEqual(t, "session", list[0], want)
		}
		return err
	})
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		return tx.SessionTouch(ctx, a.ID, now, "198.51.100.1", "ua/2")
	})
	// The second factor: off at creation (as created), on once marked.
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error { return tx.SessionSetSecondFactor(ctx, b.ID) })
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		ga, err := tx.SessionGet(ctx, a.ID)
		if err != nil {
			return err
		}
		gb, err := tx.SessionGet(ctx, b.ID)
		wantEqual(t, "second factor of a, b", []bool{ga.SecondFactor, gb.SecondFactor}, []bool{false, true})
		return err
	})
	wantErr(t, "second factor of unknown session", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		return tx.SessionSetSecondFactor(ctx, "nope")
	}), persistence.ErrNotFound)
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		got, err := tx.SessionGet(ctx, a.ID)
		wantEqual(t, "touched", []any{got.LastSeenAt, got.IP, got.UserAgent}, []any{ct(now), "198.51.100.1", "ua/2"})
		n, err2 := tx.SessionCountLive(ctx, now)
		wantEqual(t, "live count", n, 3)
		if err == nil {
			err = err2
		}
		return err
	})

	var first, second bool
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		var err error
		if first, err = tx.SessionRevoke(ctx, a.ID, now, "logout"); err != nil {
			return err
		}
		second, err = tx.SessionRevoke(ctx, a.ID, now.Add(time.Second), "again")
		return err
	})
	wantEqual(t, "revoke twice", []bool{first, second}, []bool{true, false})
	wantErr(t, "revoke unknown", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.SessionRevoke(ctx, "nope", now, "x")
		return err
	}), persistence.ErrNotFound)

	later := now.Add(time.Minute)
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		revoked, err := tx.SessionRevokeByUser(ctx, "u1", later, "logout_all")
		wantEqual(t, "revoked by user (a already was)", revoked, sortedIDs(b.ID, expired.ID))
		return err
	})
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		got, err := tx.SessionGet(ctx, a.ID)
		wantEqual(t, "first revocation kept", []any{got.RevokedAt, got.RevokeReason}, []any{ct(now), "logout"})
		list, err2 := tx.SessionListByUser(ctx, "u1", later, 10)
		wantEqual(t, "no live sessions", len(list), 0)
		since, err3 := tx.SessionListRevokedSince(ctx, later, 100)
		wantEqual(t, "revoked since", sortedIDs(since...), sortedIDs(b.ID, expired.ID))
		all, err4 := tx.SessionListRevokedSince(ctx, now, 100)
		wantEqual(t, "revoked since earlier", len(all), 3)
		for _, e := range []error{err2, err3, err4} {
			if err == nil {
				err = e
			}
		}
		return err
	})
	wantErr(t, "list limit", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.SessionListByUser(ctx, "u1", now, 0)
		return err
	}), persistence.ErrInvalid)
}

func sortedIDs(ids ...string) []string {
	out := append([]string{}, ids...)
	slices.Sort(out)
	return out
}

func testIdentityRefreshTokens(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	first := persistence.RefreshToken{Hash: bytes.Repeat([]byte{1}, 32), SessionID: "s1", IssuedAt: base, ExpiresAt: base.Add(time.Hour)}
	child := persistence.RefreshToken{Hash: bytes.Repeat([]byte{2}, 32), SessionID: "s1", ParentHash: first.Hash,
		IssuedAt: base.Add(time.Minute), ExpiresAt: base.Add(time.Hour)}
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		if err := tx.RefreshTokenPut(ctx, first); err != nil {
			return err
		}
		return tx.RefreshTokenUse(ctx, first.Hash, base.Add(time.Minute))
	})
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error { return tx.RefreshTokenPut(ctx, child) })
	wantErr(t, "duplicate", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error { return tx.RefreshTokenPut(ctx, child) }), persistence.ErrConflict)
	wantErr(t, "reuse", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		return tx.RefreshTokenUse(ctx, first.Hash, base.Add(2*time.Minute))
	}), persistence.ErrConflict)
	wantErr(t, "unknown", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		return tx.RefreshTokenUse(ctx, []byte{7}, base)
	}), persistence.ErrNotFound)
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		got, err := tx.RefreshTokenGet(ctx, first.Hash)
		want := first
		want.IssuedAt, want.ExpiresAt, want.UsedAt = ct(base), ct(base.Add(time.Hour)), ct(base.Add(time.Minute))
		wantEqual(t, "first", got, want)
		c, err2 := tx.RefreshTokenGet(ctx, child.Hash)
		wantEqual(t, "child parent", c.ParentHash, first.Hash)
		wantEqual(t, "child unused", c.UsedAt.IsZero(), true)
		if err == nil {
			err = err2
		}
		return err
	})
}

// testIdentityRefreshTokenRace: of many transactions using one refresh
// token at once, exactly one succeeds; the others see ErrConflict. That is
// the guarantee reuse detection rests on.
func testIdentityRefreshTokenRace(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	tok := persistence.RefreshToken{Hash: bytes.Repeat([]byte{3}, 32), SessionID: "s1", IssuedAt: base, ExpiresAt: base.Add(time.Hour)}
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error { return tx.RefreshTokenPut(ctx, tok) })
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.InTx(context.Background(), func(tx persistence.Tx) error {
				return tx.RefreshTokenUse(context.Background(), tok.Hash, base.Add(time.Duration(i)*time.Second))
			})
		}()
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !isConflict(err):
			t.Fatalf("use %d: %v", i, err)
		}
	}
	if won != 1 {
		t.Fatalf("%d transactions used the token, want exactly 1 (errors %v)", won, errs)
	}
}

func isConflict(err error) bool { return errors.Is(err, persistence.ErrConflict) }
