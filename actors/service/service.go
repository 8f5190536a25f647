// Package service holds what every use-case service shares: who is asking
// (Caller) and the audit entry a state change leaves.
//
// Use-case services live in the packages beside this one, one per
// capability (booking, identity, privacy, shop, ...). A service takes plain
// Go inputs and a Caller, decides with the store and the actors, and
// returns domain values or fault errors. It knows nothing about HTTP, so
// the gateway's handlers (decode → call → encode) and non-HTTP callers such
// as the WhatsApp bot apply exactly the same rules.
//
// Mutations that the gateway runs under an Idempotency-Key take the
// caller's persistence.Tx, so the idempotency record commits with the
// effect; everything else opens its own transaction.
package service

import (
	"context"
	"encoding/json"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/persistence"
)

// Caller is who asks for a use case and through which request. The zero
// Caller is anonymous.
type Caller struct {
	// Claims is the authenticated principal (zero Subject: anonymous).
	auth.Claims
	// RequestID traces the request through audit entries and events.
	RequestID string
	// IP is the client's address as the edge determined it ("" when the
	// channel has none, e.g. a WhatsApp message).
	IP string
}

// Anonymous reports whether nobody is signed in.
func (c Caller) Anonymous() bool { return c.Subject == "" }

// Audit appends an audit entry by c at at. detail must already have PII
// masked; a non-empty reason wraps it as {"reason", "detail"}.
func Audit(ctx context.Context, tx persistence.Tx, at time.Time, c Caller, action, subject, reason string, detail any) error {
	if reason != "" {
		detail = map[string]any{"reason": reason, "detail": detail}
	}
	b, err := json.Marshal(detail)
	if err != nil {
		return err
	}
	return tx.AuditAppend(ctx, persistence.AuditEntry{
		ID: ulid.Make().String(), At: at.UTC(),
		ActorID: c.Subject, ActorRole: string(c.Role),
		Action: action, Subject: subject, RequestID: c.RequestID, Detail: b,
	})
}
