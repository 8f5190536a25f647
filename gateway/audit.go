package gateway

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/oklog/ulid/v2"

	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence"
)

// Audit page sizes: a default that fits a screen, a cap that keeps one
// request cheap.
const (
	defaultAuditLimit = 50
	maxAuditLimit     = 200
)

type auditEntryView struct {
	ID        string          `json:"id"`
	At        time.Time       `json:"at"`
	ActorID   string          `json:"actor_id"`
	ActorRole string          `json:"actor_role"`
	Action    string          `json:"action"`
	Subject   string          `json:"subject"`
	RequestID string          `json:"request_id"`
	Reason    string          `json:"reason,omitempty"`
	Detail    json.RawMessage `json:"detail,omitempty"`
}

type auditPage struct {
	Entries []auditEntryView `json:"entries"`
	// Next is the `before` cursor of the following page; null on the last.
	Next *string `json:"next"`
}

// listAudit pages through the audit log newest first. The cursor is the
// last entry's id, which is stable while new entries are appended.
func (s *server) listAudit(c *fiber.Ctx) error {
	limit := defaultAuditLimit
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fault.Invalid("", fault.FieldError{Field: "limit", Message: "must be a positive integer"})
		}
		limit = min(n, maxAuditLimit)
	}
	before := c.Query("before")
	if before != "" {
		if _, err := ulid.ParseStrict(before); err != nil {
			return fault.Invalid("", fault.FieldError{Field: "before", Message: "must be a cursor from a previous page"})
		}
	}
	subject := c.Query("subject")
	if len(subject) > 200 {
		return fault.Invalid("", fault.FieldError{Field: "subject", Message: "is too long"})
	}

	var entries []persistence.AuditEntry
	err := s.deps.Store.InTx(c.UserContext(), func(tx persistence.Tx) error {
		var err error
		// One extra row tells whether another page exists.
		entries, err = tx.AuditList(c.UserContext(), persistence.AuditListParams{
			Subject: subject, BeforeID: before, Limit: limit + 1,
		})
		return err
	})
	if err != nil {
		return err
	}
	entries, cursor := pageOf(entries, limit, func(e persistence.AuditEntry) string { return e.ID })
	page := auditPage{Entries: make([]auditEntryView, 0, len(entries)), Next: cursor}
	for _, e := range entries {
		v := auditEntryView{
			ID: e.ID, At: e.At.UTC(), ActorID: e.ActorID, ActorRole: e.ActorRole,
			Action: e.Action, Subject: e.Subject, RequestID: e.RequestID, Reason: e.Reason,
		}
		if json.Valid(e.Detail) {
			v.Detail = e.Detail
		}
		page.Entries = append(page.Entries, v)
	}
	return c.JSON(page)
}
