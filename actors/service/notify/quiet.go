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
// hour. Policy is read on the client's clock when their profile names a
// time zone, else on its own (the studio's).
type MarketingHours struct {
	Policy quiethours.Policy
}

// Delay is how long n waits at now, the windows read on zone's clock (the
// client's own; nil: the policy's, the studio's).
func (m MarketingHours) Delay(n persistence.Notification, now time.Time, zone *time.Location) time.Duration {
	if n.Category != persistence.CategoryMarketing {
		return 0
	}
	if zone != nil {
		return m.Policy.In(zone).Delay(now)
	}
	return m.Policy.Delay(now)
}
