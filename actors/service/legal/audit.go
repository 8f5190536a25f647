package legal

import (
	"context"

	"github.com/oklog/ulid/v2"

	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence"
)

// Audit page sizes: a default that fits a screen, a cap that keeps one
// request cheap.
const (
	DefaultAuditLimit = 50
	MaxAuditLimit     = 200
)

// AuditQuery pages through the audit log newest first.
type AuditQuery struct {
	Subject  string // "": every subject, e.g. "user/<id>"
	BeforeID string // cursor from a previous page
	Limit    int    // page size; 0: DefaultAuditLimit; capped at MaxAuditLimit
}

// AuditLog reads one page of the audit log, for admins. The cursor is the
// last entry's id, which is stable while new entries are appended; next is
// nil on the last page.
func (s *Service) AuditLog(ctx context.Context, by service.Caller, q AuditQuery) (entries []persistence.AuditEntry, next *string, err error) {
	if err := requireAdmin(by); err != nil {
		return nil, nil, err
	}
	limit := DefaultAuditLimit
	if q.Limit > 0 {
		limit = min(q.Limit, MaxAuditLimit)
	}
	if q.BeforeID != "" {
		if _, err := ulid.ParseStrict(q.BeforeID); err != nil {
			return nil, nil, fault.Invalid("", fault.FieldError{Field: "before", Message: "must be a cursor from a previous page"})
		}
	}
	if len(q.Subject) > 200 {
		return nil, nil, fault.Invalid("", fault.FieldError{Field: "subject", Message: "is too long"})
	}
	err = s.read(ctx, func(tx persistence.Tx) (err error) {
		// One extra row tells whether another page exists.
		entries, err = tx.AuditList(ctx, persistence.AuditListParams{Subject: q.Subject, BeforeID: q.BeforeID, Limit: limit + 1})
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	entries, next = pageOf(entries, limit, func(e persistence.AuditEntry) string { return e.ID })
	return entries, next, nil
}
