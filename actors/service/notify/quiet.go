package notify

import (
	"time"

	"github.com/spa-engine/spa/actors/service/notify/quiethours"
	"github.com/spa-engine/spa/persistence"
)

// MarketingHours is the QuietHours of the node: a marketing message waits
// for the next moment Policy allows (it is delayed, never dropped); the
// booking and payments categories are transactional, asked for by the
// client (a login code, a confirmation, a receipt), and go at once at any
// hour. Policy is read in its own time zone: the studio's, as clients
// have no time zone of their own yet.
type MarketingHours struct {
	Policy quiethours.Policy
}

// Delay is how long n waits at now.
func (m MarketingHours) Delay(n persistence.Notification, now time.Time) time.Duration {
	if n.Category != persistence.CategoryMarketing {
		return 0
	}
	return m.Policy.Delay(now)
}
