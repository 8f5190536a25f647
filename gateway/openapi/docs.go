package openapi

import (
	_ "embed"

	"github.com/gofiber/fiber/v2"
)

// redocJS is Redoc's standalone bundle (redoc/README.md): the page's only
// script, served from the binary.
//
//go:embed redoc/redoc.standalone.js
var redocJS []byte

// RedocVersion is the vendored Redoc's version (redoc/README.md).
const RedocVersion = "3.0.1"

// docsPage renders /openapi.json with Redoc. No inline script: the CSP
// below allows only this origin's scripts.
const docsPage = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Spa Engine API</title>
</head>
<body>
<redoc spec-url="/openapi.json" hide-download-button="false"></redoc>
<script type="module" src="/docs/redoc.standalone.js"></script>
</body>
</html>
`

// docsCSP replaces the API's "default-src 'none'" for the page and its
// script: Redoc injects its styles (inline), fetches the document, and
// runs its search index in a blob: worker. Nothing leaves this origin.
const docsCSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
	"font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// ServeDocs is the handler of GET /docs: the API reference as a page.
func ServeDocs(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentSecurityPolicy, docsCSP)
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	return c.SendString(docsPage)
}

// ServeRedoc is the handler of GET /docs/redoc.standalone.js.
func ServeRedoc(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentSecurityPolicy, docsCSP)
	c.Set(fiber.HeaderContentType, "text/javascript; charset=utf-8")
	// The bundle changes only with the binary.
	c.Set(fiber.HeaderCacheControl, "public, max-age=3600")
	return c.Send(redocJS)
}
