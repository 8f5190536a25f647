package gateway

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/actors/service/legal"
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

// listAudit pages through the audit log newest first (legal.Service.AuditLog).
func (s *server) listAudit(c *fiber.Ctx) error {
	q := legal.AuditQuery{Subject: c.Query("subject"), BeforeID: c.Query("before")}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fault.Invalid("", fault.FieldError{Field: "limit", Message: "must be a positive integer"})
		}
		q.Limit = n
	}
	entries, next, err := s.legalSvc.AuditLog(c.UserContext(), s.caller(c), q)
	if err != nil {
		return err
	}
	page := auditPage{Entries: make([]auditEntryView, 0, len(entries)), Next: next}
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
