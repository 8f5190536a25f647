package service

import (
	"context"
	"time"

	"github.com/spa-engine/spa/persistence"
)

// Sessions ends a user's sign-in sessions on behalf of use cases that are
// not sign-in's own: anonymising a user, blocking a phone number. How
// sessions are revoked (the rows, the SessionsRevoked event every node
// follows, this node's token cache) belongs to the identity use cases,
// which provide it.
type Sessions interface {
	// EndSessions revokes every live session of userID in tx, with reason,
	// and appends the event other nodes follow; it returns the ids revoked.
	EndSessions(ctx context.Context, tx persistence.Tx, by Caller, userID, reason string, at time.Time) ([]string, error)
	// Forget applies a revocation on this node at once. Callers call it
	// before their transaction commits, so no request on this node is
	// served with a token the commit revokes.
	Forget(at time.Time, ids ...string)
}
