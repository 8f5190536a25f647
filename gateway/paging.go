package gateway

// List endpoints page newest first by id: they read one row more than the
// page holds, and that extra row says another page exists.

// pageOf trims rows, read with limit+1, to the page and returns the
// cursor of the next page (the page's last id), or nil on the last page.
func pageOf[T any](rows []T, limit int, id func(T) string) ([]T, *string) {
	if len(rows) <= limit {
		return rows, nil
	}
	cur := id(rows[limit-1])
	return rows[:limit], &cur
}
