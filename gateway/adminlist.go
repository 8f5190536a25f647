package gateway

import (
	"context"
	"strconv"

	"github.com/gofiber/fiber/v2"
	"github.com/oklog/ulid/v2"

	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/persistence"
)

// Transitional: audit, read and readPage serve the handlers whose use
// cases have not moved into a service under actors/service yet (issue 13);
// delete them once nothing calls them.

// audit appends an audit entry for the request's principal; detail must
// already have PII masked.
func (s *server) audit(c *fiber.Ctx, tx persistence.Tx, action, subject string, detail any) error {
	return service.Audit(c.UserContext(), tx, s.deps.Now(), s.caller(c), action, subject, "", detail)
}

// read runs fn in a transaction of its own, for GET handlers.
func (s *server) read(c *fiber.Ctx, fn func(ctx context.Context, tx persistence.Tx) error) error {
	ctx := c.UserContext()
	return s.deps.Store.InTx(ctx, func(tx persistence.Tx) error { return fn(ctx, tx) })
}

// beforeCursor reads the "before" query parameter of an admin list: empty,
// or the ULID cursor a previous page returned.
func beforeCursor(c *fiber.Ctx, f *fieldErrors) string {
	before := c.Query("before")
	if before != "" {
		if _, err := ulid.ParseStrict(before); err != nil {
			f.add("before", "must be a cursor from a previous page")
		}
	}
	return before
}

// limitQuery reads the "limit" query parameter of an admin list: def when
// absent, else a positive integer capped at most.
func limitQuery(c *fiber.Ctx, f *fieldErrors, def, most int) int {
	v := c.Query("limit")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		f.add("limit", "must be a positive integer")
	}
	return min(max(n, 1), most)
}
