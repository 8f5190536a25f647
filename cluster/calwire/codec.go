package calwire

import (
	"strconv"
	"time"

	"github.com/spa-engine/spa/actors/resource"
	"github.com/spa-engine/spa/actors/schedule"
	"github.com/spa-engine/spa/cluster/route"
)

// ScheduleCodec is the schedule router's codec: actors placed by
// "staff/<id>", requests keyed by appointment.
func ScheduleCodec() route.Codec {
	return route.CodecOf(schedule.CalendarID, EncodeSchedule, DecodeSchedule, EncodeScheduleReply, DecodeScheduleReply, scheduleKey)
}

// ResourceCodec is the resource router's codec: actors placed by
// "resource/<id>", requests keyed by appointment.
func ResourceCodec() route.Codec {
	return route.CodecOf(resource.CalendarID, EncodeResource, DecodeResource, EncodeResourceReply, DecodeResourceReply, resourceKey)
}

// scheduleKey names a schedule request across retries: the appointment
// it concerns (chosen by the caller, stable across its retries) and the
// kind of change.
func scheduleKey(msg any) string {
	switch m := msg.(type) {
	case *schedule.Hold:
		return "hold/" + m.AppointmentID
	case *schedule.Confirm:
		return "confirm/" + m.AppointmentID
	case *schedule.Cancel:
		return "cancel/" + m.AppointmentID
	case *schedule.CheckIn:
		return "checkin/" + m.AppointmentID
	case *schedule.Complete:
		return "complete/" + m.AppointmentID
	case *schedule.NoShow:
		return "noshow/" + m.AppointmentID
	case *schedule.Reschedule:
		return "reschedule/" + m.AppointmentID + "/" + m.Start.UTC().Format(time.RFC3339)
	case *schedule.SlotsQuery:
		return "slots" // a read
	}
	return ""
}

func resourceKey(msg any) string {
	switch m := msg.(type) {
	case *resource.Claim:
		return "claim/" + m.AppointmentID
	case *resource.Release:
		return "release/" + m.AppointmentID
	case *resource.Track:
		return "track/" + m.Appointment.ID + "/" + strconv.FormatInt(m.Appointment.Version, 10)
	case *resource.FullQuery:
		return "full" // a read
	}
	return ""
}
