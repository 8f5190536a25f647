package gateway

import (
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/service/notify"
	"github.com/spa-engine/spa/persistence"
)

// A client's notification preferences (docs/notifications.md,
// Preferences): the HTTP side of notify.MyPreferences and
// notify.SetMyPreferences, which hold the rules.

func (s *server) registerNotificationPreferences(app *fiber.App) {
	client := RequireRole(auth.RoleClient)
	app.Get("/v1/me/notification-preferences", client, s.getNotificationPreferences)
	app.Put("/v1/me/notification-preferences", client, s.mutate(s.putNotificationPreferences))
}

// notificationPreferencesJSON is the body of both routes' answers; the
// PUT takes the same fields (updated_at ignored).
type notificationPreferencesJSON struct {
	// Categories: category → channel → on.
	Categories   map[string]map[string]bool `json:"categories"`
	ChannelOrder []string                   `json:"channel_order"`
	Version      int64                      `json:"version"`
	UpdatedAt    *time.Time                 `json:"updated_at"`
}

func notificationPreferencesView(p notify.Preferences) notificationPreferencesJSON {
	v := notificationPreferencesJSON{Categories: map[string]map[string]bool{}, ChannelOrder: []string{},
		Version: p.Version, UpdatedAt: utcOrNil(p.UpdatedAt)}
	for cat, chans := range p.On {
		v.Categories[string(cat)] = map[string]bool{}
		for ch, on := range chans {
			v.Categories[string(cat)][string(ch)] = on
		}
	}
	for _, ch := range p.ChannelOrder {
		v.ChannelOrder = append(v.ChannelOrder, string(ch))
	}
	return v
}

func (s *server) getNotificationPreferences(c *fiber.Ctx) error {
	p, err := notify.MyPreferences(c.UserContext(), s.deps.Store, s.caller(c))
	if err != nil {
		return err
	}
	return c.JSON(notificationPreferencesView(p))
}

func (s *server) putNotificationPreferences(c *fiber.Ctx, tx persistence.Tx) error {
	var in notificationPreferencesJSON
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	p, err := notify.SetMyPreferences(c.UserContext(), tx, s.caller(c),
		notify.PreferencesInput{On: in.Categories, ChannelOrder: in.ChannelOrder, Version: in.Version}, s.deps.Now())
	if err != nil {
		return err
	}
	return c.JSON(notificationPreferencesView(p))
}
