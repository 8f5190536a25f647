// Package console is the ops console: a page on the admin listener
// (gateway.NewAdmin) that reads the node's own /metrics every few seconds
// and shows what an operator asks first: which build, the cluster's
// members and partitions, live actors and mailboxes, streams and
// consumers, the outbox, provider breakers, payment exceptions, the
// database pool and the messages sent, and readiness with each provider's
// breaker (/readyz). With an admin token typed into it (kept in the tab's
// sessionStorage, sent as a Bearer header) it also shows the cluster's
// members and partitions, dead letters, open reconciliation exceptions
// and recent admin actions, and retries, discards and resolves after a
// confirmation in the page: all through the API's own admin routes, which
// the admin listener forwards (gateway.AdminDeps.API), so they are
// checked and audited exactly as from any admin client and the page needs
// no API of its own. The assets are embedded and the page runs no inline
// script.
package console

import (
	_ "embed"

	"github.com/gofiber/fiber/v2"
)

//go:embed index.html
var page []byte

//go:embed console.js
var script []byte

//go:embed console.css
var style []byte

// csp admits this origin's script, style and /metrics only.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// Register mounts the page (/ and /console/*) on the admin app.
func Register(app *fiber.App) {
	serve := func(body []byte, contentType string) fiber.Handler {
		return func(c *fiber.Ctx) error {
			c.Set(fiber.HeaderContentSecurityPolicy, csp)
			c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
			c.Set(fiber.HeaderCacheControl, "no-store")
			c.Set(fiber.HeaderContentType, contentType)
			return c.Send(body)
		}
	}
	app.Get("/", serve(page, fiber.MIMETextHTMLCharsetUTF8))
	app.Get("/console/console.js", serve(script, "text/javascript; charset=utf-8"))
	app.Get("/console/console.css", serve(style, "text/css; charset=utf-8"))
}
