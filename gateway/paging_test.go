package gateway

import (
	"slices"
	"testing"
)

func TestPageOf(t *testing.T) {
	id := func(s string) string { return s }
	for _, tc := range []struct {
		rows  []string
		limit int
		page  []string
		next  string // "" : nil
	}{
		{nil, 2, nil, ""},
		{[]string{"c", "b"}, 2, []string{"c", "b"}, ""},
		{[]string{"c", "b", "a"}, 2, []string{"c", "b"}, "b"},
		{[]string{"c", "b"}, 1, []string{"c"}, "c"},
	} {
		page, next := pageOf(tc.rows, tc.limit, id)
		if !slices.Equal(page, tc.page) || (next == nil) != (tc.next == "") || (next != nil && *next != tc.next) {
			t.Errorf("pageOf(%v, %d) = %v, %v; want %v, %q", tc.rows, tc.limit, page, next, tc.page, tc.next)
		}
	}
}
