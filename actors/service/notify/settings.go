package notify

import (
	"fmt"
	"strings"
	"time"
)

// The settings cmd/spa reads from the environment (docs/notifications.md).

// ParseReminders reads the reminder lead times, longest first: "24h,2h"
// (the default), "" for the default, "off" for none. The first is the
// appointment_reminder_24h, the second the appointment_reminder_2h.
func ParseReminders(v string) ([]Reminder, error) {
	v = strings.TrimSpace(strings.ToLower(v))
	switch v {
	case "":
		return DefaultReminders, nil
	case "off", "none":
		return []Reminder{}, nil
	}
	parts := strings.Split(v, ",")
	if len(parts) != len(ReminderKinds()) {
		return nil, fmt.Errorf("want two lead times, longest first (e.g. 24h,2h), or off; got %q", v)
	}
	out := make([]Reminder, len(parts))
	for i, p := range parts {
		d, err := time.ParseDuration(strings.TrimSpace(p))
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("lead time %q: want a positive duration such as 24h or 90m", p)
		}
		if i > 0 && d >= out[i-1].Before {
			return nil, fmt.Errorf("lead times must be longest first, got %q", v)
		}
		out[i] = Reminder{Kind: ReminderKinds()[i], Before: d}
	}
	return out, nil
}

// ParseBackoff reads the retry waits: durations separated by commas, e.g.
// "10s,1m,5m,15m,30m" ("" is DefaultBackoff). A message is dead after
// one attempt more than there are waits.
func ParseBackoff(v string) ([]time.Duration, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return DefaultBackoff, nil
	}
	var out []time.Duration
	for p := range strings.SplitSeq(v, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(p))
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("wait %q: want positive durations separated by commas, e.g. 10s,1m,5m", p)
		}
		out = append(out, d)
	}
	return out, nil
}
