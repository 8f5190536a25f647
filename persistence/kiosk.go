package persistence

import (
	"context"
	"time"
)

// ---- Kiosks ------------------------------------------------------------
//
// A kiosk is a studio device (a tablet at the door) an admin signed in with
// a kiosk token: role "kiosk", bound to the kiosk's ID as its session, good
// only for the kiosk routes. The row is what revocation and expiry are
// checked against on every kiosk request, on every node.

// Kiosk is one issued kiosk token's record.
type Kiosk struct {
	ID        string // ULID; the token's subject and session id
	Label     string // e.g. "front desk tablet"
	CreatedBy string // the admin's subject
	CreatedAt time.Time
	ExpiresAt time.Time
	RevokedAt time.Time // zero while live
}

// Live reports whether the kiosk may still act at now.
func (k Kiosk) Live(now time.Time) bool {
	return k.RevokedAt.IsZero() && now.Before(k.ExpiresAt)
}

// MaxKioskListLimit bounds KioskList.
const MaxKioskListLimit = 1000

// KioskStore keeps kiosk records.
type KioskStore interface {
	// KioskCreate inserts k; ErrConflict if its ID exists.
	KioskCreate(ctx context.Context, k Kiosk) error
	// KioskGet returns the kiosk, live or not, or ErrNotFound.
	KioskGet(ctx context.Context, id string) (Kiosk, error)
	// KioskList returns kiosks newest first, at most limit; only those
	// live at now unless all.
	KioskList(ctx context.Context, now time.Time, all bool, limit int) ([]Kiosk, error)
	// KioskRevoke marks the kiosk revoked at at unless it already is, and
	// reports whether this call revoked it; ErrNotFound if absent.
	KioskRevoke(ctx context.Context, id string, at time.Time) (bool, error)
	// KioskCountLive counts kiosks live at now.
	KioskCountLive(ctx context.Context, now time.Time) (int, error)
}

// NormalizeKiosk checks k for KioskCreate and makes its times canonical.
func NormalizeKiosk(k Kiosk) (Kiosk, error) {
	if err := checkID("kiosk", k.ID); err != nil {
		return k, err
	}
	if len(k.Label) > 200 {
		return k, invalidf("kiosk %s: label longer than 200 bytes", k.ID)
	}
	k.CreatedAt, k.ExpiresAt, k.RevokedAt = CanonicalTime(k.CreatedAt), CanonicalTime(k.ExpiresAt), CanonicalTime(k.RevokedAt)
	if k.CreatedAt.IsZero() || !k.ExpiresAt.After(k.CreatedAt) {
		return k, invalidf("kiosk %s: expiry %v is not after creation %v", k.ID, k.ExpiresAt, k.CreatedAt)
	}
	return k, nil
}
