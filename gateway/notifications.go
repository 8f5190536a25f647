package gateway

import (
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/providers/sender"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/actors/service/notify"
	"github.com/spa-engine/spa/persistence"
)

// The admin's list of recent notifications (docs/notifications.md).

func (s *server) registerNotifications(app *fiber.App) {
	app.Get("/v1/admin/notifications", RequireRole(auth.RoleAdmin), s.listNotifications)
	s.registerNotificationTemplates(app)
	s.registerNotificationDeadLetters(app)
	s.registerNotificationPreferences(app)
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

// The admin's notification templates (docs/notifications.md, Templates):
// list, preview with the kind's sample values, save a version, activate
// one. Saving and activating are audited by the catalog.

func (s *server) registerNotificationTemplates(app *fiber.App) {
	admin := RequireRole(auth.RoleAdmin)
	// An activation drops this node's cache once its transaction
	// committed, so the next message sends the new version.
	changed := func(h fiber.Handler) fiber.Handler {
		return func(c *fiber.Ctx) error {
			err := h(c)
			s.templates.Invalidate()
			return err
		}
	}
	const one = "/v1/admin/notifications/templates/:kind/:language/:channel"
	app.Get("/v1/admin/notifications/templates", admin, s.listTemplates)
	app.Post(one+"/preview", admin, s.previewTemplate)
	app.Post(one+"/versions", admin, s.mutate(s.createTemplateVersion))
	app.Post(one+"/versions/:version/activate", admin, changed(s.mutate(s.activateTemplateVersion)))
}

type templateVarJSON struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

type templateVersionJSON struct {
	Version   int        `json:"version"`
	Subject   string     `json:"subject"`
	Body      string     `json:"body"`
	Embedded  bool       `json:"embedded"`
	CreatedAt *time.Time `json:"created_at"`
	CreatedBy string     `json:"created_by"`
}

func templateVersionView(v notify.TemplateVersion) templateVersionJSON {
	return templateVersionJSON{Version: v.Version, Subject: v.Subject, Body: v.Body, Embedded: v.Embedded,
		CreatedAt: utcOrNil(v.CreatedAt), CreatedBy: v.CreatedBy}
}

// templateKey is the template the path names.
func templateKey(c *fiber.Ctx) (notify.Kind, string, sender.Channel) {
	return notify.Kind(c.Params("kind")), c.Params("language"), sender.Channel(c.Params("channel"))
}

func (s *server) listTemplates(c *fiber.Ctx) error {
	infos, err := s.templates.List(c.UserContext(), s.caller(c))
	if err != nil {
		return err
	}
	type templateJSON struct {
		Kind      string                `json:"kind"`
		Language  string                `json:"language"`
		Channel   string                `json:"channel"`
		Active    int                   `json:"active"`
		Variables []templateVarJSON     `json:"variables"`
		Versions  []templateVersionJSON `json:"versions"`
	}
	out := make([]templateJSON, len(infos))
	for i, in := range infos {
		t := templateJSON{Kind: string(in.Kind), Language: in.Language, Channel: string(in.Channel), Active: in.Active}
		for _, v := range in.Variables {
			t.Variables = append(t.Variables, templateVarJSON{Name: v.Name, Type: string(v.Type)})
		}
		for _, v := range in.Versions {
			t.Versions = append(t.Versions, templateVersionView(v))
		}
		out[i] = t
	}
	return c.JSON(fiber.Map{"templates": out})
}

type templateDraftJSON struct {
	Subject string `json:"subject"`
	Body    string `json:"body"`
}

func (s *server) previewTemplate(c *fiber.Ctx) error {
	var in struct {
		Version int     `json:"version"`
		Subject *string `json:"subject"`
		Body    *string `json:"body"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	var draft *notify.Draft
	switch {
	case in.Body != nil && in.Version == 0:
		draft = &notify.Draft{Body: *in.Body}
		if in.Subject != nil {
			draft.Subject = *in.Subject
		}
	case in.Body == nil && in.Subject == nil && in.Version > 0:
	default:
		return fault.Invalid("preview a saved version or a draft",
			fault.FieldError{Field: "version", Message: "give a version (1 is the embedded text) or a body (and subject on email), not both"})
	}
	kind, lang, ch := templateKey(c)
	r, err := s.templates.Preview(c.UserContext(), s.caller(c), kind, lang, ch, in.Version, draft)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"subject": r.Subject, "text": r.Text, "html": r.HTML})
}

func (s *server) createTemplateVersion(c *fiber.Ctx, tx persistence.Tx) error {
	var in templateDraftJSON
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	kind, lang, ch := templateKey(c)
	v, err := s.templates.CreateVersion(c.UserContext(), tx, s.caller(c), kind, lang, ch, notify.Draft{Subject: in.Subject, Body: in.Body})
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(templateVersionView(v))
}

func (s *server) activateTemplateVersion(c *fiber.Ctx, tx persistence.Tx) error {
	version, err := strconv.Atoi(c.Params("version"))
	if err != nil || version < 1 {
		return fault.NotFound("no such template version")
	}
	kind, lang, ch := templateKey(c)
	if err := s.templates.Activate(c.UserContext(), tx, s.caller(c), kind, lang, ch, version); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"kind": kind, "language": lang, "channel": ch, "active": version})
}
