package gateway

import (
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/actors/service/notify"
)

// The admin's dead letters (docs/notifications.md, Retries and dead
// letters): list grouped by error class, retry one or a class, discard
// with confirmation. The use case audits every action; the retries and
// discards act on JetStream outside any transaction and are safe to
// repeat, so they take an Idempotency-Key at the edge (WrapExternal).

var errNoDeadLetters = fault.Unavailable("notifications are off on this node (SPA_NOTIFICATIONS=false)")

func (s *server) registerNotificationDeadLetters(app *fiber.App) {
	admin := RequireRole(auth.RoleAdmin)
	app.Get("/v1/admin/notifications/dead-letters", admin, s.listDeadLetters)
	app.Post("/v1/admin/notifications/dead-letters/retry", admin, s.external(s.retryDeadLetters))
	app.Post("/v1/admin/notifications/dead-letters/discard", admin, s.external(s.discardDeadLetters))
}

type deadLetterJSON struct {
	ID             string    `json:"id"`
	NotificationID string    `json:"notification_id"`
	Kind           string    `json:"kind"`
	Channel        string    `json:"channel"`
	ErrorClass     string    `json:"error_class"`
	Error          string    `json:"error"`
	Attempts       int       `json:"attempts"`
	Retries        int       `json:"retries"`
	QueuedAt       time.Time `json:"queued_at"`
	DeadAt         time.Time `json:"dead_at"`
}

type deadLetterGroupJSON struct {
	ErrorClass string           `json:"error_class"`
	Count      int              `json:"count"`
	FirstSeen  time.Time        `json:"first_seen"`
	LastSeen   time.Time        `json:"last_seen"`
	Example    string           `json:"example_error"`
	Letters    []deadLetterJSON `json:"letters"`
}

func (s *server) listDeadLetters(c *fiber.Ctx) error {
	dl := s.deps.NotificationDeadLetters
	if dl == nil {
		return errNoDeadLetters
	}
	var f fieldErrors
	limit := limitQuery(c, &f, notify.DefaultDeadLettersShown, notify.MaxDeadLettersShown)
	if err := f.err(); err != nil {
		return err
	}
	sum, err := dl.Summary(c.UserContext(), s.caller(c), limit)
	if err != nil {
		return err
	}
	out := struct {
		Total     int                   `json:"total"`
		Truncated bool                  `json:"truncated"`
		Groups    []deadLetterGroupJSON `json:"groups"`
	}{Total: sum.Total, Truncated: sum.Truncated, Groups: make([]deadLetterGroupJSON, len(sum.Groups))}
	for i, g := range sum.Groups {
		gj := deadLetterGroupJSON{ErrorClass: g.ErrorClass, Count: g.Count, FirstSeen: g.FirstSeen.UTC(), LastSeen: g.LastSeen.UTC(),
			Example: g.Example, Letters: make([]deadLetterJSON, len(g.Letters))}
		for j, l := range g.Letters {
			gj.Letters[j] = deadLetterJSON{ID: l.ID, NotificationID: l.NotificationID, Kind: l.Kind, Channel: l.Channel,
				ErrorClass: l.ErrorClass, Error: l.Error, Attempts: l.Attempts, Retries: l.Retries,
				QueuedAt: l.QueuedAt.UTC(), DeadAt: l.DeadAt.UTC()}
		}
		out.Groups[i] = gj
	}
	return c.JSON(out)
}

// deadLetterAction is the body of a retry or discard: one letter by id or
// every letter of an error class; confirm on a discard.
type deadLetterAction struct {
	ID         string `json:"id"`
	ErrorClass string `json:"error_class"`
	Confirm    bool   `json:"confirm"`
}

func (s *server) retryDeadLetters(c *fiber.Ctx) error {
	dl := s.deps.NotificationDeadLetters
	if dl == nil {
		return errNoDeadLetters
	}
	var in deadLetterAction
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	res, err := dl.Retry(c.UserContext(), s.caller(c), notify.DeadLetterSelector{ID: in.ID, ErrorClass: in.ErrorClass})
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"retried": res.Done, "remaining": res.Remaining})
}

func (s *server) discardDeadLetters(c *fiber.Ctx) error {
	dl := s.deps.NotificationDeadLetters
	if dl == nil {
		return errNoDeadLetters
	}
	var in deadLetterAction
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	res, err := dl.Discard(c.UserContext(), s.caller(c), notify.DeadLetterSelector{ID: in.ID, ErrorClass: in.ErrorClass}, in.Confirm)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"discarded": res.Done, "remaining": res.Remaining})
}
