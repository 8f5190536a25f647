// Package waitlist follows appointment changes: it offers freed slots to
// waiting clients (and, as a backstop, gives back what a lapsed hold
// spent). It reacts to
// AppointmentChanged events: when an appointment is cancelled, its hold
// expires or it moves away, the slot it held is offered to the first
// matching waiting client, as a hold made through that staff member's
// schedule actor, and a WaitlistOffered event is written for the
// notification that tells the client.
//
// Events arrive from a durable JetStream consumer one at a time, so two
// offers never race for one slot on a node; an event delivered twice
// offers nothing twice, because the hold's id is derived from the entry.
package waitlist

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/spa-engine/spa/actors/schedule"
	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
)

// Processor offers freed slots.
type Processor struct {
	Store     persistence.Store
	Calendars *schedule.Client // the schedule actors
	Now       func() time.Time
}

// freed statuses: the appointment no longer occupies its slot.
var freed = map[string]bool{
	string(persistence.StatusCancelled): true,
	string(persistence.StatusExpired):   true,
}

// OfferID is the hold made for a waitlist entry: derived from it, so a
// redelivered event finds the same hold.
func OfferID(entryID string) string { return offerPrefix + entryID }

const offerPrefix = "wl_"

// Handle processes one AppointmentChanged event. A nil error means the
// event is done with (acknowledge it); an error means retry it later.
func (p *Processor) Handle(ctx context.Context, ev *messages.AppointmentChanged) error {
	if err := p.settleOffer(ctx, ev); err != nil {
		return err
	}
	expired := ev.ToStatus == string(persistence.StatusExpired)
	var start, end time.Time
	switch {
	case freed[ev.ToStatus] && ev.FromStatus != ev.ToStatus:
		start, end = ev.Start.AsTime(), ev.End.AsTime()
	case ev.PreviousStart != nil: // a reschedule frees where it was
		start = ev.PreviousStart.AsTime()
		end = start.Add(ev.End.AsTime().Sub(ev.Start.AsTime()))
	}
	offer := !start.IsZero() && start.After(p.Now()) // the past cannot be offered
	if !expired && !offer {
		return nil
	}
	// One transaction for what a lapse asks of the store: a wave of lapsed
	// holds (thousands at once after a peak) costs the database one
	// transaction each, not two, while claims are being decided.
	var candidates []persistence.WaitlistEntry
	services := map[string]persistence.Service{}
	err := p.Store.InTx(ctx, func(tx persistence.Tx) (err error) {
		candidates = nil
		clear(services)
		if expired {
			// The schedule actor gives back what a lapsed hold spent in the
			// write that records the lapse; this is the backstop for lapses
			// recorded by a build that did not (ReleaseCredits is idempotent,
			// so it gives nothing back twice).
			if err := persistence.ReleaseCredits(ctx, tx, ev.AppointmentId, p.Now().UTC()); err != nil {
				return err
			}
		}
		if !offer {
			return nil
		}
		candidates, err = tx.WaitlistMatch(ctx, persistence.WaitlistMatch{StaffID: ev.StaffId, Start: start, End: end, Limit: 20})
		if err != nil {
			return err
		}
		for _, e := range candidates {
			if _, ok := services[e.ServiceID]; !ok {
				sv, err := tx.ServiceGet(ctx, e.ServiceID)
				if err != nil && !errors.Is(err, persistence.ErrNotFound) {
					return err
				}
				services[e.ServiceID] = sv
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, e := range candidates {
		sv := services[e.ServiceID]
		if !sv.Active || start.Add(sv.Duration).After(e.To) || sv.ResourceID != "" {
			continue // this client's service does not fit the freed slot
		}
		offered, err := p.offer(ctx, e, sv, ev.StaffId, start)
		if err != nil || offered {
			return err
		}
	}
	return nil
}

// settleOffer closes an entry whose offered hold was confirmed (fulfilled),
// or lapsed or was cancelled: the client does not get to block the queue,
// and the slot, freed again, goes to the next in line.
func (p *Processor) settleOffer(ctx context.Context, ev *messages.AppointmentChanged) error {
	entryID, ok := strings.CutPrefix(ev.AppointmentId, offerPrefix)
	if !ok {
		return nil
	}
	to := map[string]persistence.WaitlistStatus{
		string(persistence.StatusConfirmed): persistence.WaitlistFulfilled,
		string(persistence.StatusExpired):   persistence.WaitlistExpired,
		string(persistence.StatusCancelled): persistence.WaitlistCancelled,
	}[ev.ToStatus]
	if to == "" {
		return nil
	}
	return p.Store.InTx(ctx, func(tx persistence.Tx) error {
		e, err := tx.WaitlistGet(ctx, entryID)
		if errors.Is(err, persistence.ErrNotFound) {
			return nil
		}
		if err != nil || e.Status != persistence.WaitlistOffered {
			return err // nil when already settled (a redelivery)
		}
		e.Status, e.UpdatedAt = to, p.Now().UTC()
		_, err = tx.WaitlistUpdate(ctx, e)
		return err
	})
}

// offer holds the slot for the entry's client and marks the entry offered,
// with the event for the notification. It reports whether the slot went to
// this entry; false means the slot does not suit it (try the next one).
func (p *Processor) offer(ctx context.Context, e persistence.WaitlistEntry, sv persistence.Service, staffID string, start time.Time) (bool, error) {
	reply, err := p.Calendars.Hold(ctx, staffID, &schedule.Hold{
		AppointmentID: OfferID(e.ID), ClientID: e.ClientID, Service: sv, Start: start, ActorID: "waitlist",
	})
	if err != nil {
		return false, fmt.Errorf("waitlist: hold for %s: %w", e.ID, err)
	}
	switch {
	case errors.Is(reply.Err, schedule.ErrSlotTaken), errors.Is(reply.Err, schedule.ErrInvalid):
		return false, nil
	case reply.Err != nil:
		return false, fmt.Errorf("waitlist: hold for %s: %w", e.ID, reply.Err)
	}
	now := p.Now().UTC()
	err = p.Store.InTx(ctx, func(tx persistence.Tx) error {
		cur, err := tx.WaitlistGet(ctx, e.ID)
		if err != nil {
			return err
		}
		if cur.Status != persistence.WaitlistWaiting {
			return nil // a redelivery: already offered
		}
		cur.Status, cur.OfferedAppointmentID, cur.UpdatedAt = persistence.WaitlistOffered, reply.Appointment.ID, now
		if _, err := tx.WaitlistUpdate(ctx, cur); err != nil {
			return err
		}
		out, err := persistence.NewOutboxEvent("waitlist/"+e.ID, "", "waitlist", &messages.WaitlistOffered{
			EntryId: e.ID, ClientId: e.ClientID, ServiceId: sv.ID, StaffId: staffID,
			AppointmentId: reply.Appointment.ID, Start: timestamppb.New(reply.Appointment.Start),
			HoldExpiresAt: timestamppb.New(reply.Appointment.HoldExpiresAt),
		}, now)
		if err != nil {
			return err
		}
		return tx.OutboxAppend(ctx, out)
	})
	return err == nil, err
}
