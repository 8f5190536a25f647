package persistence

import (
	"context"
	"time"
)

// ResourceClaim is a short, durable reservation of one unit of a shared
// resource (a room, a sauna) for one appointment that is being booked: the
// resource's actor writes it before the staff member's actor holds the
// slot, so a booking that needs both never holds either actor waiting on
// the other. A claim whose ExpiresAt has passed blocks nothing, whether or
// not it has been deleted yet.
type ResourceClaim struct {
	ResourceID    string
	AppointmentID string
	// Start and End are the padded interval: buffers included.
	Start, End time.Time
	ExpiresAt  time.Time
}

// ResourceClaimStore keeps resource claims. Like appointments, claims are
// written only by the resource's actor, in transactions that begin with
// CalendarCheckEpoch("resource/<id>").
type ResourceClaimStore interface {
	// ResourceClaimPut inserts the claim of (ResourceID, AppointmentID), or
	// replaces it (a retried claim, or a reschedule claiming a new
	// interval for the same appointment).
	ResourceClaimPut(ctx context.Context, c ResourceClaim) error
	// ResourceClaimDelete removes the appointment's claim on the resource;
	// removing an absent claim is not an error.
	ResourceClaimDelete(ctx context.Context, resourceID, appointmentID string) error
	// ResourceClaimList returns the resource's claims unexpired at now
	// (ExpiresAt > now) overlapping [from, to) (Start < to and End > from),
	// ordered by (Start, AppointmentID).
	ResourceClaimList(ctx context.Context, resourceID string, from, to, now time.Time) ([]ResourceClaim, error)
}

// NormalizeResourceClaim checks c for ResourceClaimPut: both ids, an End
// after Start and an ExpiresAt; times are made canonical.
func NormalizeResourceClaim(c ResourceClaim) (ResourceClaim, error) {
	if err := checkID("resource", c.ResourceID); err != nil {
		return c, err
	}
	if err := checkID("appointment", c.AppointmentID); err != nil {
		return c, err
	}
	c.Start, c.End, c.ExpiresAt = CanonicalTime(c.Start), CanonicalTime(c.End), CanonicalTime(c.ExpiresAt)
	if c.Start.IsZero() || !c.End.After(c.Start) {
		return c, invalidf("resource claim %s/%s: end %v is not after start %v", c.ResourceID, c.AppointmentID, c.End, c.Start)
	}
	if c.ExpiresAt.IsZero() {
		return c, invalidf("resource claim %s/%s: an expiry is required", c.ResourceID, c.AppointmentID)
	}
	return c, nil
}
