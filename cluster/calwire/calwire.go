// Package calwire encodes the calendar actors' requests and replies
// (actors/schedule, actors/resource) as the protobuf messages of
// messages/calendar.proto, so they can travel to the node that owns the
// calendar (part of cluster/: cluster/route sends them through
// cluster/forward). Errors travel as a code naming the sentinel the actor
// answered plus the full text; decoding rebuilds an error that matches the
// same sentinel with errors.Is, so the gateway maps a remote refusal
// exactly as a local one.
package calwire

import (
	"errors"
	"fmt"
	"time"

	"github.com/spa-engine/spa/actors/availability"
	"github.com/spa-engine/spa/actors/keyed"
	"github.com/spa-engine/spa/actors/resource"
	"github.com/spa-engine/spa/actors/schedule"
	"github.com/spa-engine/spa/cluster/wire"
	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
)

// ErrUnsupported: the value is not a calendar message this package knows.
var ErrUnsupported = errors.New("calwire: unsupported message")

func service(s persistence.Service) *messages.CalendarService {
	return &messages.CalendarService{
		Id: s.ID, Name: s.Name, Category: s.Category, DurationNs: int64(s.Duration), PriceMinor: s.PriceMinor,
		BufferBeforeNs: int64(s.BufferBefore), BufferAfterNs: int64(s.BufferAfter), RequiredSkills: s.RequiredSkills,
		ResourceId: s.ResourceID, DepositPolicy: string(s.DepositPolicy), DepositValue: s.DepositValue,
		CancelCutoffNs: int64(s.CancelCutoff), RescheduleCutoffNs: int64(s.RescheduleCutoff), Active: s.Active,
		Version: s.Version, UpdatedAt: wire.TS(s.UpdatedAt),
	}
}

func fromService(s *messages.CalendarService) persistence.Service {
	return persistence.Service{
		ID: s.GetId(), Name: s.GetName(), Category: s.GetCategory(), Duration: time.Duration(s.GetDurationNs()),
		PriceMinor: s.GetPriceMinor(), BufferBefore: time.Duration(s.GetBufferBeforeNs()), BufferAfter: time.Duration(s.GetBufferAfterNs()),
		RequiredSkills: s.GetRequiredSkills(), ResourceID: s.GetResourceId(), DepositPolicy: persistence.DepositPolicy(s.GetDepositPolicy()),
		DepositValue: s.GetDepositValue(), CancelCutoff: time.Duration(s.GetCancelCutoffNs()),
		RescheduleCutoff: time.Duration(s.GetRescheduleCutoffNs()), Active: s.GetActive(), Version: s.GetVersion(),
		UpdatedAt: wire.TM(s.GetUpdatedAt()),
	}
}

func appointment(a persistence.Appointment) *messages.CalendarAppointment {
	return &messages.CalendarAppointment{
		Id: a.ID, StaffId: a.StaffID, ResourceId: a.ResourceID, ServiceId: a.ServiceID, ClientId: a.ClientID,
		Start: wire.TS(a.Start), End: wire.TS(a.End), BufferBeforeNs: int64(a.BufferBefore), BufferAfterNs: int64(a.BufferAfter),
		Status: string(a.Status), HoldExpiresAt: wire.TS(a.HoldExpiresAt), PriceMinor: a.PriceMinor, DepositMinor: a.DepositMinor,
		CheckedInAt: wire.TS(a.CheckedInAt), Version: a.Version, CreatedAt: wire.TS(a.CreatedAt), UpdatedAt: wire.TS(a.UpdatedAt),
	}
}

func fromAppointment(a *messages.CalendarAppointment) persistence.Appointment {
	if a == nil {
		return persistence.Appointment{}
	}
	return persistence.Appointment{
		ID: a.GetId(), StaffID: a.GetStaffId(), ResourceID: a.GetResourceId(), ServiceID: a.GetServiceId(), ClientID: a.GetClientId(),
		Start: wire.TM(a.GetStart()), End: wire.TM(a.GetEnd()), BufferBefore: time.Duration(a.GetBufferBeforeNs()),
		BufferAfter: time.Duration(a.GetBufferAfterNs()), Status: persistence.AppointmentStatus(a.GetStatus()),
		HoldExpiresAt: wire.TM(a.GetHoldExpiresAt()), PriceMinor: a.GetPriceMinor(), DepositMinor: a.GetDepositMinor(),
		CheckedInAt: wire.TM(a.GetCheckedInAt()), Version: a.GetVersion(), CreatedAt: wire.TM(a.GetCreatedAt()), UpdatedAt: wire.TM(a.GetUpdatedAt()),
	}
}

func slots(s []availability.Slot) []*messages.CalendarSlot {
	if len(s) == 0 {
		return nil
	}
	out := make([]*messages.CalendarSlot, len(s))
	for i, x := range s {
		out[i] = &messages.CalendarSlot{Start: wire.TS(x.Start), End: wire.TS(x.End), StaffId: x.StaffID}
	}
	return out
}

func fromSlots(s []*messages.CalendarSlot) []availability.Slot {
	if len(s) == 0 {
		return nil
	}
	out := make([]availability.Slot, len(s))
	for i, x := range s {
		out[i] = availability.Slot{Start: wire.TM(x.GetStart()), End: wire.TM(x.GetEnd()), StaffID: x.GetStaffId()}
	}
	return out
}

func interval(iv availability.Interval) *messages.CalendarInterval {
	return &messages.CalendarInterval{Start: wire.TS(iv.Start), End: wire.TS(iv.End)}
}

func fromInterval(iv *messages.CalendarInterval) availability.Interval {
	return availability.Interval{Start: wire.TM(iv.GetStart()), End: wire.TM(iv.GetEnd())}
}

// sentinels pairs each error code with the error it stands for. The first
// match wins, so more specific sentinels come first.
var sentinels = wire.Sentinels[messages.CalendarError_Code]{
	{Code: messages.CalendarError_CODE_SLOT_TAKEN, Err: schedule.ErrSlotTaken},
	{Code: messages.CalendarError_CODE_HOLD_EXPIRED, Err: schedule.ErrHoldExpired},
	{Code: messages.CalendarError_CODE_TRANSITION, Err: schedule.ErrTransition},
	{Code: messages.CalendarError_CODE_CUTOFF, Err: schedule.ErrCutoff},
	{Code: messages.CalendarError_CODE_NOT_FOUND, Err: schedule.ErrNotFound},
	{Code: messages.CalendarError_CODE_UNKNOWN_STAFF, Err: schedule.ErrUnknownStaff},
	{Code: messages.CalendarError_CODE_INVALID, Err: schedule.ErrInvalid},
	{Code: messages.CalendarError_CODE_AVAILABILITY_INVALID, Err: availability.ErrInvalid},
	// Before RETRY: a batch refused for a key answered elsewhere is both,
	// and its caller must learn the former (see batch.Lifecycle).
	{Code: messages.CalendarError_CODE_KEY_ELSEWHERE, Err: keyed.ErrElsewhere},
	{Code: messages.CalendarError_CODE_KEY_REUSED, Err: keyed.ErrReused},
	{Code: messages.CalendarError_CODE_RETRY, Err: schedule.ErrRetry},
	{Code: messages.CalendarError_CODE_RESOURCE_FULL, Err: resource.ErrFull},
	{Code: messages.CalendarError_CODE_RESOURCE_UNKNOWN, Err: resource.ErrUnknownResource},
	{Code: messages.CalendarError_CODE_RESOURCE_INVALID, Err: resource.ErrInvalid},
	{Code: messages.CalendarError_CODE_RESOURCE_RETRY, Err: resource.ErrRetry},
}

func encodeErr(err error) *messages.CalendarError {
	if err == nil {
		return nil
	}
	e := &messages.CalendarError{Message: err.Error()}
	if codes := sentinels.Codes(err); len(codes) > 0 {
		e.Code = codes[0]
	}
	return e
}

func decodeErr(e *messages.CalendarError) error {
	if e == nil {
		return nil
	}
	return wire.Error(e.GetMessage(), sentinels.Errs(e.GetCode()))
}

// EncodeSchedule encodes a request to staffID's schedule actor.
func EncodeSchedule(staffID string, msg any) (*messages.ScheduleRequest, error) {
	r := &messages.ScheduleRequest{StaffId: staffID}
	switch m := msg.(type) {
	case *schedule.Hold:
		r.Key = wire.Key(m.Key)
		r.Request = &messages.ScheduleRequest_Hold{Hold: &messages.ScheduleHold{AppointmentId: m.AppointmentID,
			ClientId: m.ClientID, Service: service(m.Service), Start: wire.TS(m.Start), ActorId: m.ActorID, ClaimUntil: wire.TS(m.ClaimUntil)}}
	case *schedule.Confirm:
		r.Key = wire.Key(m.Key)
		r.Request = &messages.ScheduleRequest_Confirm{Confirm: &messages.ScheduleConfirm{AppointmentId: m.AppointmentID,
			ActorId: m.ActorID, Reason: m.Reason}}
	case *schedule.Cancel:
		r.Key = wire.Key(m.Key)
		r.Request = &messages.ScheduleRequest_Cancel{Cancel: &messages.ScheduleCancel{AppointmentId: m.AppointmentID,
			ActorId: m.ActorID, Reason: m.Reason, CutoffNs: int64(m.Cutoff), Override: m.Override}}
	case *schedule.CheckIn:
		r.Key = wire.Key(m.Key)
		r.Request = &messages.ScheduleRequest_CheckIn{CheckIn: &messages.ScheduleCheckIn{AppointmentId: m.AppointmentID, ActorId: m.ActorID}}
	case *schedule.Complete:
		r.Key = wire.Key(m.Key)
		r.Request = &messages.ScheduleRequest_Complete{Complete: &messages.ScheduleComplete{AppointmentId: m.AppointmentID,
			ActorId: m.ActorID, Reason: m.Reason}}
	case *schedule.NoShow:
		r.Key = wire.Key(m.Key)
		r.Request = &messages.ScheduleRequest_NoShow{NoShow: &messages.ScheduleNoShow{AppointmentId: m.AppointmentID,
			ActorId: m.ActorID, Reason: m.Reason}}
	case *schedule.Reschedule:
		r.Key = wire.Key(m.Key)
		r.Request = &messages.ScheduleRequest_Reschedule{Reschedule: &messages.ScheduleReschedule{AppointmentId: m.AppointmentID,
			Start: wire.TS(m.Start), Service: service(m.Service), ActorId: m.ActorID, Override: m.Override, ClaimUntil: wire.TS(m.ClaimUntil)}}
	case *schedule.SlotsQuery:
		r.Request = &messages.ScheduleRequest_Slots{Slots: &messages.ScheduleSlotsQuery{Service: service(m.Service),
			From: wire.TS(m.From), To: wire.TS(m.To)}}
	default:
		return nil, fmt.Errorf("%w: %T for a schedule actor", ErrUnsupported, msg)
	}
	return r, nil
}

// DecodeSchedule decodes a request to a schedule actor: the staff id and
// the message the actor answers.
func DecodeSchedule(r *messages.ScheduleRequest) (string, any, error) {
	var msg any
	switch m := r.GetRequest().(type) {
	case *messages.ScheduleRequest_Hold:
		h := m.Hold
		msg = &schedule.Hold{AppointmentID: h.GetAppointmentId(), ClientID: h.GetClientId(), Service: fromService(h.GetService()),
			Start: wire.TM(h.GetStart()), ActorID: h.GetActorId(), ClaimUntil: wire.TM(h.GetClaimUntil())}
	case *messages.ScheduleRequest_Confirm:
		c := m.Confirm
		msg = &schedule.Confirm{AppointmentID: c.GetAppointmentId(), ActorID: c.GetActorId(), Reason: c.GetReason()}
	case *messages.ScheduleRequest_Cancel:
		c := m.Cancel
		msg = &schedule.Cancel{AppointmentID: c.GetAppointmentId(), ActorID: c.GetActorId(), Reason: c.GetReason(),
			Cutoff: time.Duration(c.GetCutoffNs()), Override: c.GetOverride()}
	case *messages.ScheduleRequest_CheckIn:
		msg = &schedule.CheckIn{AppointmentID: m.CheckIn.GetAppointmentId(), ActorID: m.CheckIn.GetActorId()}
	case *messages.ScheduleRequest_Complete:
		c := m.Complete
		msg = &schedule.Complete{AppointmentID: c.GetAppointmentId(), ActorID: c.GetActorId(), Reason: c.GetReason()}
	case *messages.ScheduleRequest_NoShow:
		c := m.NoShow
		msg = &schedule.NoShow{AppointmentID: c.GetAppointmentId(), ActorID: c.GetActorId(), Reason: c.GetReason()}
	case *messages.ScheduleRequest_Reschedule:
		c := m.Reschedule
		msg = &schedule.Reschedule{AppointmentID: c.GetAppointmentId(), Start: wire.TM(c.GetStart()), Service: fromService(c.GetService()),
			ActorID: c.GetActorId(), Override: c.GetOverride(), ClaimUntil: wire.TM(c.GetClaimUntil())}
	case *messages.ScheduleRequest_Slots:
		q := m.Slots
		msg = &schedule.SlotsQuery{Service: fromService(q.GetService()), From: wire.TM(q.GetFrom()), To: wire.TM(q.GetTo())}
	default:
		return "", nil, fmt.Errorf("%w: schedule request without a known body", ErrUnsupported)
	}
	if k, ok := msg.(interface{ SetKey(*keyed.Key) }); ok && r.GetKey() != nil {
		k.SetKey(wire.FromKey(r.GetKey()))
	}
	if r.GetStaffId() == "" {
		return "", nil, fmt.Errorf("%w: schedule request without a staff id", ErrUnsupported)
	}
	return r.GetStaffId(), msg, nil
}

// EncodeScheduleReply encodes a schedule actor's reply.
func EncodeScheduleReply(reply any) (*messages.ScheduleReply, error) {
	switch r := reply.(type) {
	case *schedule.HoldReply:
		return &messages.ScheduleReply{Kind: messages.ScheduleReply_KIND_HOLD, Appointment: appointment(r.Appointment),
			Alternatives: slots(r.Alternatives), Error: encodeErr(r.Err), Replayed: r.Replayed}, nil
	case *schedule.Reply:
		return &messages.ScheduleReply{Kind: messages.ScheduleReply_KIND_REPLY, Appointment: appointment(r.Appointment),
			Alternatives: slots(r.Alternatives), Error: encodeErr(r.Err), Replayed: r.Replayed}, nil
	case *schedule.SlotsReply:
		return &messages.ScheduleReply{Kind: messages.ScheduleReply_KIND_SLOTS, Slots: slots(r.Slots), Load: int64(r.Load),
			Error: encodeErr(r.Err)}, nil
	}
	return nil, fmt.Errorf("%w: %T as a schedule reply", ErrUnsupported, reply)
}

// DecodeScheduleReply decodes a schedule actor's reply into the type the
// request expects.
func DecodeScheduleReply(r *messages.ScheduleReply) (any, error) {
	switch r.GetKind() {
	case messages.ScheduleReply_KIND_HOLD:
		return &schedule.HoldReply{Appointment: fromAppointment(r.GetAppointment()), Alternatives: fromSlots(r.GetAlternatives()),
			Err: decodeErr(r.GetError()), Replayed: r.GetReplayed()}, nil
	case messages.ScheduleReply_KIND_REPLY:
		return &schedule.Reply{Appointment: fromAppointment(r.GetAppointment()), Alternatives: fromSlots(r.GetAlternatives()),
			Err: decodeErr(r.GetError()), Replayed: r.GetReplayed()}, nil
	case messages.ScheduleReply_KIND_SLOTS:
		return &schedule.SlotsReply{Slots: fromSlots(r.GetSlots()), Load: int(r.GetLoad()), Err: decodeErr(r.GetError())}, nil
	}
	return nil, fmt.Errorf("%w: schedule reply kind %v", ErrUnsupported, r.GetKind())
}

// EncodeResource encodes a request to resourceID's resource actor.
func EncodeResource(resourceID string, msg any) (*messages.ResourceRequest, error) {
	r := &messages.ResourceRequest{ResourceId: resourceID}
	switch m := msg.(type) {
	case *resource.Claim:
		r.Request = &messages.ResourceRequest_Claim{Claim: &messages.ResourceClaim{AppointmentId: m.AppointmentID,
			Interval: interval(m.Interval), TtlNs: int64(m.TTL)}}
	case *resource.Release:
		r.Request = &messages.ResourceRequest_Release{Release: &messages.ResourceRelease{AppointmentId: m.AppointmentID}}
	case *resource.Track:
		r.Request = &messages.ResourceRequest_Track{Track: &messages.ResourceTrack{Appointment: appointment(m.Appointment)}}
	case *resource.FullQuery:
		r.Request = &messages.ResourceRequest_Full{Full: &messages.ResourceFullQuery{From: wire.TS(m.From), To: wire.TS(m.To)}}
	default:
		return nil, fmt.Errorf("%w: %T for a resource actor", ErrUnsupported, msg)
	}
	return r, nil
}

// DecodeResource decodes a request to a resource actor.
func DecodeResource(r *messages.ResourceRequest) (string, any, error) {
	var msg any
	switch m := r.GetRequest().(type) {
	case *messages.ResourceRequest_Claim:
		msg = &resource.Claim{AppointmentID: m.Claim.GetAppointmentId(), Interval: fromInterval(m.Claim.GetInterval()),
			TTL: time.Duration(m.Claim.GetTtlNs())}
	case *messages.ResourceRequest_Release:
		msg = &resource.Release{AppointmentID: m.Release.GetAppointmentId()}
	case *messages.ResourceRequest_Track:
		msg = &resource.Track{Appointment: fromAppointment(m.Track.GetAppointment())}
	case *messages.ResourceRequest_Full:
		msg = &resource.FullQuery{From: wire.TM(m.Full.GetFrom()), To: wire.TM(m.Full.GetTo())}
	default:
		return "", nil, fmt.Errorf("%w: resource request without a known body", ErrUnsupported)
	}
	if r.GetResourceId() == "" {
		return "", nil, fmt.Errorf("%w: resource request without a resource id", ErrUnsupported)
	}
	return r.GetResourceId(), msg, nil
}

// EncodeResourceReply encodes a resource actor's reply.
func EncodeResourceReply(reply any) (*messages.ResourceReply, error) {
	switch r := reply.(type) {
	case *resource.ClaimReply:
		return &messages.ResourceReply{Kind: messages.ResourceReply_KIND_CLAIM, ExpiresAt: wire.TS(r.ExpiresAt), Error: encodeErr(r.Err)}, nil
	case *resource.Reply:
		return &messages.ResourceReply{Kind: messages.ResourceReply_KIND_REPLY, Error: encodeErr(r.Err)}, nil
	case *resource.TrackReply:
		return &messages.ResourceReply{Kind: messages.ResourceReply_KIND_TRACK, Overbooked: r.Overbooked, Error: encodeErr(r.Err)}, nil
	case *resource.FullReply:
		spans := make([]*messages.CalendarInterval, len(r.Spans))
		for i, s := range r.Spans {
			spans[i] = interval(s)
		}
		return &messages.ResourceReply{Kind: messages.ResourceReply_KIND_FULL, Spans: spans, Capacity: int64(r.Capacity),
			Error: encodeErr(r.Err)}, nil
	}
	return nil, fmt.Errorf("%w: %T as a resource reply", ErrUnsupported, reply)
}

// DecodeResourceReply decodes a resource actor's reply.
func DecodeResourceReply(r *messages.ResourceReply) (any, error) {
	switch r.GetKind() {
	case messages.ResourceReply_KIND_CLAIM:
		return &resource.ClaimReply{ExpiresAt: wire.TM(r.GetExpiresAt()), Err: decodeErr(r.GetError())}, nil
	case messages.ResourceReply_KIND_REPLY:
		return &resource.Reply{Err: decodeErr(r.GetError())}, nil
	case messages.ResourceReply_KIND_TRACK:
		return &resource.TrackReply{Overbooked: r.GetOverbooked(), Err: decodeErr(r.GetError())}, nil
	case messages.ResourceReply_KIND_FULL:
		var spans []availability.Interval
		for _, s := range r.GetSpans() {
			spans = append(spans, fromInterval(s))
		}
		return &resource.FullReply{Spans: spans, Capacity: int(r.GetCapacity()), Err: decodeErr(r.GetError())}, nil
	}
	return nil, fmt.Errorf("%w: resource reply kind %v", ErrUnsupported, r.GetKind())
}
