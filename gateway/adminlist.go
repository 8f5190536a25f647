package gateway

import (
	"strconv"

	"github.com/gofiber/fiber/v2"
	"github.com/oklog/ulid/v2"
)

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
