package catalogue

import (
	"fmt"
	"regexp"
	"time"

	"github.com/spa-engine/spa/persistence"
)

// The JSON forms of catalogue entries. Each is both the API's answer and
// the audit detail of the change that stored it, so the two cannot drift.

var (
	skillRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,39}$`)
	clockRE = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$`)
)

// ClockRange is a span of local clock time, "09:00" to "13:00".
type ClockRange struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

func clockMinutes(s string) int {
	var h, m int
	fmt.Sscanf(s, "%d:%d", &h, &m)
	return h*60 + m
}

func clockText(min int) string { return fmt.Sprintf("%02d:%02d", min/60, min%60) }

// Ranges writes stored ranges as clock text.
func Ranges(in []persistence.ClockRange) []ClockRange {
	out := make([]ClockRange, len(in))
	for i, r := range in {
		out[i] = ClockRange{clockText(r.StartMinute), clockText(r.EndMinute)}
	}
	return out
}

// ServiceJSON is a service as the API shows it: what an admin puts
// (ServiceInput) with its id and when it last changed, so a read can be
// edited and put back.
type ServiceJSON struct {
	ID string `json:"id"`
	ServiceInput
	UpdatedAt time.Time `json:"updated_at"`
}

// ServiceView is s's JSON form.
func ServiceView(s persistence.Service) ServiceJSON {
	return ServiceJSON{ID: s.ID, UpdatedAt: s.UpdatedAt.UTC(), ServiceInput: ServiceInput{
		ID: s.ID, Name: s.Name, Category: s.Category,
		DurationMinutes: int(s.Duration / time.Minute), PriceMinor: s.PriceMinor,
		BufferBeforeMinutes: int(s.BufferBefore / time.Minute), BufferAfterMinutes: int(s.BufferAfter / time.Minute),
		RequiredSkills: append([]string{}, s.RequiredSkills...), ResourceID: s.ResourceID,
		DepositPolicy: string(s.DepositPolicy), DepositValue: s.DepositValue, DepositNoShows: s.DepositNoShows,
		CancelCutoffMinutes:     int(s.CancelCutoff / time.Minute),
		RescheduleCutoffMinutes: int(s.RescheduleCutoff / time.Minute),
		Active:                  s.Active, Version: s.Version,
	}}
}

// StaffJSON is a staff member as the API shows it; the public view leaves
// out hours and bookkeeping (PublicStaffView).
type StaffJSON struct {
	ID          string                  `json:"id"`
	Name        string                  `json:"name"`
	Skills      []string                `json:"skills"`
	TimeZone    string                  `json:"time_zone"`
	WeeklyHours map[string][]ClockRange `json:"weekly_hours,omitempty"`
	Active      bool                    `json:"active"`
	Version     int64                   `json:"version,omitempty"`
	UpdatedAt   *time.Time              `json:"updated_at,omitempty"`
}

// StaffView is m's admin JSON form.
func StaffView(m persistence.StaffMember) StaffJSON {
	hours := make(map[string][]ClockRange, 7)
	for d, rs := range m.Weekly {
		hours[weekdays[d]] = Ranges(rs)
	}
	at := m.UpdatedAt.UTC()
	return StaffJSON{ID: m.ID, Name: m.Name, Skills: append([]string{}, m.Skills...), TimeZone: m.TimeZone,
		WeeklyHours: hours, Active: m.Active, Version: m.Version, UpdatedAt: &at}
}

// PublicStaffView is what anyone may see of m.
func PublicStaffView(m persistence.StaffMember) StaffJSON {
	return StaffJSON{ID: m.ID, Name: m.Name, Skills: append([]string{}, m.Skills...), TimeZone: m.TimeZone, Active: m.Active}
}

// OverrideJSON is a date override as the API shows it.
type OverrideJSON struct {
	Date   string       `json:"date"`
	Closed bool         `json:"closed"`
	Ranges []ClockRange `json:"ranges"`
}

// OverrideView is o's JSON form.
func OverrideView(o persistence.DateOverride) OverrideJSON {
	return OverrideJSON{Date: o.Date, Closed: o.Closed, Ranges: Ranges(o.Ranges)}
}

// TimeOffJSON is a block of time off as the API shows it.
type TimeOffJSON struct {
	ID     string    `json:"id"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Reason string    `json:"reason"`
}

// TimeOffView is t's JSON form.
func TimeOffView(t persistence.TimeOff) TimeOffJSON {
	return TimeOffJSON{ID: t.ID, Start: t.Start.UTC(), End: t.End.UTC(), Reason: t.Reason}
}

// ResourceJSON is a resource as the API shows it: what an admin puts
// (ResourceInput) with its id and when it last changed.
type ResourceJSON struct {
	ID string `json:"id"`
	ResourceInput
	UpdatedAt time.Time `json:"updated_at"`
}

// ResourceView is r's JSON form.
func ResourceView(r persistence.Resource) ResourceJSON {
	return ResourceJSON{ID: r.ID, UpdatedAt: r.UpdatedAt.UTC(), ResourceInput: ResourceInput{
		ID: r.ID, Name: r.Name, Capacity: r.Capacity, Active: r.Active, Version: r.Version,
	}}
}

// PublicStudioJSON is what anyone may see of the studio: enough to render
// a booking page.
type PublicStudioJSON struct {
	Name     string `json:"name"`
	TimeZone string `json:"time_zone"`
	Currency string `json:"currency"`
}

// PublicStudioView is st's public JSON form.
func PublicStudioView(st persistence.Studio) PublicStudioJSON {
	return PublicStudioJSON{Name: st.Name, TimeZone: st.TimeZone, Currency: st.Currency}
}

// StudioJSON is the studio's full profile as admins see it: what an admin
// puts (StudioInput, contact details and version included, so it can be
// edited with optimistic concurrency) with its id and when it last
// changed.
type StudioJSON struct {
	ID string `json:"id"`
	StudioInput
	UpdatedAt time.Time `json:"updated_at"`
}

// StudioView is st's admin JSON form.
func StudioView(st persistence.Studio) StudioJSON {
	return StudioJSON{ID: st.ID, UpdatedAt: st.UpdatedAt.UTC(), StudioInput: StudioInput{
		Name: st.Name, TimeZone: st.TimeZone, Currency: st.Currency,
		Phone: st.Phone, Email: st.Email, Version: st.Version,
	}}
}
