package auth

import (
	"sync"
	"time"
)

// RevokedSessions is the set of sessions whose access tokens every node must
// refuse. An entry is needed only while an access token minted for the
// session could still be unexpired, so each one is kept for a retention
// (the access-token lifetime plus Leeway) and then forgotten: the set stays
// as small as the revocations of the last few minutes. The store remains
// the authority for refresh tokens; this set only closes the window of the
// short-lived access tokens. It is safe for concurrent use.
type RevokedSessions struct {
	retain time.Duration
	now    func() time.Time

	mu    sync.Mutex
	until map[string]time.Time
	// sweepAt is when expired entries are next removed.
	sweepAt time.Time
}

// NewRevokedSessions keeps each revocation for retain (the access-token
// lifetime); now is the clock (nil: time.Now).
func NewRevokedSessions(retain time.Duration, now func() time.Time) *RevokedSessions {
	if now == nil {
		now = time.Now
	}
	return &RevokedSessions{retain: retain + Leeway, now: now, until: map[string]time.Time{}}
}

// Add records that the sessions were revoked at at (the zero time: now).
// Adding a session twice keeps the later end.
func (r *RevokedSessions) Add(at time.Time, sessionIDs ...string) {
	if at.IsZero() {
		at = r.now()
	}
	end := at.Add(r.retain)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sweep()
	for _, id := range sessionIDs {
		if id != "" && end.After(r.until[id]) {
			r.until[id] = end
		}
	}
}

// Revoked reports whether the session was revoked within the retention.
func (r *RevokedSessions) Revoked(sessionID string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	end, ok := r.until[sessionID]
	return ok && r.now().Before(end)
}

// Len is the number of sessions held, expired ones included until the next
// sweep.
func (r *RevokedSessions) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.until)
}

// sweep drops expired entries at most once a retention; r.mu is held.
func (r *RevokedSessions) sweep() {
	now := r.now()
	if now.Before(r.sweepAt) {
		return
	}
	for id, end := range r.until {
		if !now.Before(end) {
			delete(r.until, id)
		}
	}
	r.sweepAt = now.Add(r.retain)
}

var _ Revocations = (*RevokedSessions)(nil)
