// Package servicetest holds what the use-case services' tests share: who
// calls, what a refusal shows a client, and a sessions fake that revokes
// in the store as the sign-in does.
package servicetest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence"
)

// As is a caller with role and subject, on request "req-1".
func As(role auth.Role, subject string) service.Caller {
	return service.Caller{Claims: auth.Claims{Subject: subject, Role: role}, RequestID: "req-1"}
}

// Code is the fault code err shows a client ("" for nil).
func Code(err error) string {
	if err == nil {
		return ""
	}
	e, _ := fault.From(err)
	return e.Code
}

// Fields are the field names of a validation failure.
func Fields(err error) []string {
	var e *fault.Error
	if !errors.As(err, &e) {
		return nil
	}
	d, _ := e.Details.(map[string]any)
	fe, _ := d["fields"].([]fault.FieldError)
	var out []string
	for _, x := range fe {
		out = append(out, x.Field)
	}
	return out
}

// Sessions revokes in the store as the sign-in does and records whose
// sessions it ended, why, and what this node was told to forget.
type Sessions struct {
	mu      sync.Mutex
	users   []string
	reasons []string
	forgot  []string
}

// EndSessions revokes userID's sessions in tx and records the reason.
func (s *Sessions) EndSessions(ctx context.Context, tx persistence.Tx, _ service.Caller, userID, reason string, at time.Time) ([]string, error) {
	s.mu.Lock()
	s.users, s.reasons = append(s.users, userID), append(s.reasons, reason)
	s.mu.Unlock()
	return tx.SessionRevokeByUser(ctx, userID, at, reason)
}

// Forget records the session ids this node was told to forget.
func (s *Sessions) Forget(_ time.Time, ids ...string) {
	s.mu.Lock()
	s.forgot = append(s.forgot, ids...)
	s.mu.Unlock()
}

// Reasons are the reasons given to EndSessions, in order.
func (s *Sessions) Reasons() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reasons)
}

// Revoked maps each user whose sessions were ended to the last reason.
func (s *Sessions) Revoked() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]string, len(s.users))
	for i, u := range s.users {
		out[u] = s.reasons[i]
	}
	return out
}

// Forgot are the session ids this node was told to forget.
func (s *Sessions) Forgot() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.forgot)
}
