package resource

import (
	"context"
	"fmt"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/spa-engine/spa/actors/availability"
	"github.com/spa-engine/spa/actors/batch"
	"github.com/spa-engine/spa/persistence"
)

// Padded is the interval an appointment occupies the resource: its service
// time widened by its buffers.
func Padded(ap persistence.Appointment) availability.Interval {
	return availability.Interval{Start: ap.Start.Add(-ap.BufferBefore), End: ap.End.Add(ap.BufferAfter)}
}

// calendar is the resource as the availability engine sees it at now: the
// live appointments and the unexpired claims, each one use, except the
// given appointment's own.
func (a *resourceActor) calendar(except string) availability.Resource {
	res := availability.Resource{ID: a.resourceID, Capacity: a.capacity,
		Busy: make([]availability.Busy, 0, len(a.appts)+len(a.claims))}
	for id, ap := range a.appts {
		if id == except || ap.ResourceID != a.resourceID {
			continue
		}
		b := availability.Busy{Start: ap.Start, End: ap.End, BufferBefore: ap.BufferBefore, BufferAfter: ap.BufferAfter}
		switch ap.Status {
		case persistence.StatusConfirmed:
		case persistence.StatusHeld:
			b.HoldExpiresAt = ap.HoldExpiresAt
		default:
			continue
		}
		res.Busy = append(res.Busy, b)
	}
	for id, cl := range a.claims {
		if id != except {
			res.Busy = append(res.Busy, availability.Busy{Start: cl.Start, End: cl.End, HoldExpiresAt: cl.ExpiresAt})
		}
	}
	return res
}

func (a *resourceActor) claim(c actor.Context, m *Claim) {
	now := a.deps.Now()
	if m.AppointmentID == "" || m.Interval.Empty() || m.TTL < 0 {
		c.Respond(&ClaimReply{Err: fmt.Errorf("%w: a claim needs an appointment id and a non-empty interval", ErrInvalid)})
		return
	}
	a.dropLapsed(c)
	if !availability.ResourceFree(a.calendar(m.AppointmentID), now, m.Interval) {
		a.deps.Metrics.decided("claim", "full")
		// Only true once the claims it rests on are durable (batch.Refuse).
		refusal := &ClaimReply{Err: ErrFull}
		a.commits.Refuse(c, refusal, func(err error) { refusal.Err = fmt.Errorf("%w: %w", ErrRetry, err) })
		return
	}
	ttl := m.TTL
	if ttl == 0 {
		ttl = a.deps.Config.ClaimTTL
	}
	cl := persistence.ResourceClaim{ResourceID: a.resourceID, AppointmentID: m.AppointmentID,
		Start: persistence.CanonicalTime(m.Interval.Start), End: persistence.CanonicalTime(m.Interval.End),
		ExpiresAt: persistence.CanonicalTime(now.Add(ttl))}
	a.claims[cl.AppointmentID] = cl // taken from now on, before it is durable
	sender := c.Sender()
	a.commits.Enqueue(c, batch.Op{Kind: "claim",
		Apply: func(ctx context.Context, tx persistence.Tx) error { return tx.ResourceClaimPut(ctx, cl) },
		Reply: func(err error) { c.Send(sender, &ClaimReply{ExpiresAt: cl.ExpiresAt, Err: err}) },
	})
}

// dropLapsed forgets claims whose time passed (they already block nothing)
// and deletes their rows in the next batch.
func (a *resourceActor) dropLapsed(c actor.Context) {
	now := a.deps.Now()
	for id, cl := range a.claims {
		if !cl.ExpiresAt.After(now) {
			delete(a.claims, id)
			a.commits.Enqueue(c, a.deleteClaim(id, nil))
		}
	}
}

// deleteClaim is the write that removes a claim's row; reply may be nil.
func (a *resourceActor) deleteClaim(appointmentID string, reply func(error)) batch.Op {
	if reply == nil {
		reply = func(error) {}
	}
	resourceID := a.resourceID
	return batch.Op{Kind: "release",
		Apply: func(ctx context.Context, tx persistence.Tx) error {
			return tx.ResourceClaimDelete(ctx, resourceID, appointmentID)
		},
		Reply: reply,
	}
}

func (a *resourceActor) release(c actor.Context, m *Release) {
	if _, ok := a.claims[m.AppointmentID]; !ok {
		c.Respond(&Reply{})
		return
	}
	delete(a.claims, m.AppointmentID)
	sender := c.Sender()
	a.commits.Enqueue(c, a.deleteClaim(m.AppointmentID, func(err error) { c.Send(sender, &Reply{Err: err}) }))
}

// track records an appointment's latest version in memory, replacing its
// claim. The appointment is a fact already written by its staff member's
// actor, so it is kept even when it does not fit; the reply says so.
func (a *resourceActor) track(c actor.Context, m *Track) {
	ap := m.Appointment
	if ap.ID == "" {
		c.Respond(&TrackReply{Err: fmt.Errorf("%w: no appointment id", ErrInvalid)})
		return
	}
	if known, ok := a.appts[ap.ID]; ok && known.Version > ap.Version {
		c.Respond(&TrackReply{}) // a late, older version
		return
	}
	now := a.deps.Now()
	// The appointment now occupies what its claim reserved: the claim has
	// done its job. A claim for another interval (a move still being
	// decided) stays until it is released or lapses.
	// The reply waits for the claim's row to go, so that what the caller
	// reads afterwards agrees with memory.
	replaced := false
	if cl, ok := a.claims[ap.ID]; ok && cl.Start.Equal(Padded(ap).Start) && cl.End.Equal(Padded(ap).End) {
		delete(a.claims, ap.ID)
		replaced = true
	}
	reply := &TrackReply{}
	if ap.ResourceID != a.resourceID {
		delete(a.appts, ap.ID) // moved to another resource, or none
	} else {
		reply.Overbooked = ap.Live(now) && !availability.ResourceFree(a.calendar(ap.ID), now, Padded(ap))
		a.appts[ap.ID] = ap
	}
	outcome := "ok"
	if reply.Overbooked {
		outcome = "overbooked"
		a.deps.Log.Error("resource: an appointment arrived after its claim lapsed and the resource is full",
			"resource", a.resourceID, "appointment", ap.ID)
	}
	a.deps.Metrics.decided("track", outcome)
	if !replaced {
		c.Respond(reply)
		return
	}
	sender := c.Sender()
	a.commits.Enqueue(c, a.deleteClaim(ap.ID, func(err error) {
		reply.Err = err
		c.Send(sender, reply)
	}))
}

func (a *resourceActor) full(c actor.Context, m *FullQuery) {
	if m.To.Before(m.From) {
		c.Respond(&FullReply{Err: fmt.Errorf("%w: range ends before it starts", ErrInvalid)})
		return
	}
	spans := availability.FullSpans(a.calendar(""), a.deps.Now(), availability.Interval{Start: m.From, End: m.To})
	c.Respond(&FullReply{Spans: spans, Capacity: a.capacity})
}
