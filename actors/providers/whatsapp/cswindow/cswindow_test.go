package cswindow

import (
	"testing"
	"time"
)

func TestOpen(t *testing.T) {
	last := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name      string
		last, now time.Time
		want      bool
	}{
		{"never wrote", time.Time{}, last, false},
		{"just wrote", last, last, true},
		{"a second before the end", last, last.Add(Length - time.Second), true},
		{"at 24 hours", last, last.Add(Length), false},
		{"a day and an hour later", last, last.Add(25 * time.Hour), false},
	} {
		if got := Open(c.last, c.now); got != c.want {
			t.Errorf("%s: Open = %v, want %v", c.name, got, c.want)
		}
	}
	if got := Closes(last); !got.Equal(last.Add(24 * time.Hour)) {
		t.Errorf("Closes = %v", got)
	}
	if !Closes(time.Time{}).IsZero() {
		t.Error("Closes of never is not zero")
	}
}
