package gateway

import (
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/service/notify"
	"github.com/spa-engine/spa/persistence"
)

// The admin's list of recent notifications (docs/notifications.md).

func (s *server) registerNotifications(app *fiber.App) {
	app.Get("/v1/admin/notifications", RequireRole(auth.RoleAdmin), s.listNotifications)
}

type notificationJSON struct {
	ID        string     `json:"id"`
	UserID    string     `json:"user_id"`
	Kind      string     `json:"kind"`
	Category  string     `json:"category"`
	Channel   string     `json:"channel"`
	Status    string     `json:"status"`
	Attempts  int        `json:"attempts"`
	LastError string     `json:"last_error"`
	Body      string     `json:"body"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
	SentAt    *time.Time `json:"sent_at"`
}

func (s *server) listNotifications(c *fiber.Ctx) error {
	var f fieldErrors
	q := notify.Query{Status: persistence.NotificationStatus(c.Query("status")), Kind: notify.Kind(c.Query("kind")),
		Limit: limitQuery(c, &f, notify.DefaultListLimit, notify.MaxListLimit)}
	if err := f.err(); err != nil {
		return err
	}
	rows, err := notify.Recent(c.UserContext(), s.deps.Store, q)
	if err != nil {
		return err
	}
	out := struct {
		Notifications []notificationJSON `json:"notifications"`
	}{make([]notificationJSON, len(rows))}
	for i, n := range rows {
		out.Notifications[i] = notificationJSON{ID: n.ID, UserID: n.UserID, Kind: n.Kind, Category: string(n.Category),
			Channel: n.Channel, Status: string(n.Status), Attempts: n.Attempts, LastError: n.LastError, Body: n.Body,
			CreatedAt: n.CreatedAt.UTC(), UpdatedAt: n.UpdatedAt.UTC(), SentAt: utcOrNil(n.SentAt)}
	}
	return c.JSON(out)
}
