package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/spa-engine/spa/persistence"
)

// testResourceClaims: put (insert and replace), delete by appointment,
// and listing only unexpired claims of one resource overlapping a range.
func testResourceClaims(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	at := func(min int) time.Time { return base.Add(time.Duration(min) * time.Minute) }
	claim := func(res, apt string, from, to, expires int) persistence.ResourceClaim {
		return persistence.ResourceClaim{ResourceID: res, AppointmentID: apt, Start: at(from), End: at(to), ExpiresAt: at(expires)}
	}
	canon := func(c persistence.ResourceClaim) persistence.ResourceClaim {
		c.Start, c.End, c.ExpiresAt = ct(c.Start), ct(c.End), ct(c.ExpiresAt)
		return c
	}
	a := claim("sauna", "a", 0, 60, 10)
	b := claim("sauna", "b", 30, 90, 10)
	c := claim("sauna", "c", 120, 180, 10)
	other := claim("room", "a", 0, 60, 10)
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		for _, cl := range []persistence.ResourceClaim{b, a, c, other} {
			if err := tx.ResourceClaimPut(ctx, cl); err != nil {
				return err
			}
		}
		return nil
	})
	list := func(res string, from, to, now int) []persistence.ResourceClaim {
		t.Helper()
		var out []persistence.ResourceClaim
		mustTx(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
			out, err = tx.ResourceClaimList(ctx, res, at(from), at(to), at(now))
			return err
		})
		return out
	}
	wantEqual(t, "overlapping, ordered by start", list("sauna", 0, 100, 0), []persistence.ResourceClaim{canon(a), canon(b)})
	wantEqual(t, "touching ends do not overlap", list("sauna", 60, 120, 0), []persistence.ResourceClaim{canon(b)})
	wantEqual(t, "other resource", list("room", 0, 1000, 0), []persistence.ResourceClaim{canon(other)})
	wantEqual(t, "expired claims are not listed", len(list("sauna", 0, 1000, 10)), 0)
	wantEqual(t, "nothing matches", list("pool", 0, 1000, 0), []persistence.ResourceClaim{})

	// Put replaces the appointment's claim (a retry or a reschedule).
	moved := claim("sauna", "a", 200, 260, 20)
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error { return tx.ResourceClaimPut(ctx, moved) })
	wantEqual(t, "replaced", list("sauna", 0, 1000, 0), []persistence.ResourceClaim{canon(b), canon(c), canon(moved)})

	// Delete by appointment; deleting again is harmless; the other
	// resource's claim of the same appointment stays.
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		if err := tx.ResourceClaimDelete(ctx, "sauna", "a"); err != nil {
			return err
		}
		return tx.ResourceClaimDelete(ctx, "sauna", "a")
	})
	wantEqual(t, "after delete", list("sauna", 0, 1000, 0), []persistence.ResourceClaim{canon(b), canon(c)})
	wantEqual(t, "other resource kept", list("room", 0, 1000, 0), []persistence.ResourceClaim{canon(other)})

	// Malformed input is refused before any SQL.
	for name, bad := range map[string]persistence.ResourceClaim{
		"no resource":    claim("", "x", 0, 10, 10),
		"no appointment": claim("sauna", "", 0, 10, 10),
		"empty interval": claim("sauna", "x", 10, 10, 10),
		"no expiry":      {ResourceID: "sauna", AppointmentID: "x", Start: at(0), End: at(10)},
	} {
		wantErr(t, name, txErr(t, s, func(ctx context.Context, tx persistence.Tx) error { return tx.ResourceClaimPut(ctx, bad) }), persistence.ErrInvalid)
	}
	wantErr(t, "range backwards", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.ResourceClaimList(ctx, "sauna", at(10), at(0), at(0))
		return err
	}), persistence.ErrInvalid)
}
