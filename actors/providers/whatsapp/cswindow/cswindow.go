// Package cswindow is WhatsApp's customer-service window, the one rule the
// bot's staff desk and the notification service both follow: free-form
// text may go to a number only within 24 hours of the last message that
// number sent us; outside it, only an approved template. What we send
// never extends it. One home so the two cannot disagree on the length or
// on the boundary (docs/notifications.md, The 24-hour window).
package cswindow

import "time"

// Length is how long after a client's last message free-form text may go
// to them.
const Length = 24 * time.Hour

// Open reports whether free-form text may go at now to a client who last
// wrote at last (zero: never wrote, closed). The window is half-open:
// at exactly 24 hours it has closed, the reading Meta enforces.
func Open(last, now time.Time) bool {
	return !last.IsZero() && now.Before(last.Add(Length))
}

// Closes is when the window opened by a message at last closes (zero for
// a client who never wrote).
func Closes(last time.Time) time.Time {
	if last.IsZero() {
		return time.Time{}
	}
	return last.Add(Length)
}
