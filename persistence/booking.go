package persistence

import (
	"context"
	"errors"
	"time"
)

// ErrFenced: the write carried a calendar epoch older than the current one,
// so a newer activation of the calendar's actor owns it. The stale
// activation must stop.
var ErrFenced = errors.New("persistence: fenced by a newer calendar epoch")

// ---- Catalogue -----------------------------------------------------------

// DepositPolicy says what a client pays up front to turn a hold into a
// booking.
type DepositPolicy string

// MaxDepositNoShows bounds Service.DepositNoShows; NoShowLookback is how
// far back a client's no-shows count for it.
const (
	MaxDepositNoShows = 100
	NoShowLookback    = 365 * 24 * time.Hour
)

// Deposit policies.
const (
	DepositNone    DepositPolicy = "none"
	DepositPercent DepositPolicy = "percent" // DepositValue is a percentage 1..100
	DepositFixed   DepositPolicy = "fixed"   // DepositValue is an amount in minor units
)

// Service is a bookable treatment.
type Service struct {
	ID             string
	Name           string
	Category       string
	Duration       time.Duration // whole minutes
	PriceMinor     int64         // COP minor units (cents), never floats
	BufferBefore   time.Duration
	BufferAfter    time.Duration
	RequiredSkills []string // sorted, unique
	ResourceID     string   // "" when no shared resource is needed
	DepositPolicy  DepositPolicy
	DepositValue   int64
	// DepositNoShows, when positive, asks the deposit only of clients with
	// at least that many no-shows in the last year (NoShowLookback);
	// 0 asks it of everyone.
	DepositNoShows   int
	CancelCutoff     time.Duration // no client cancellation closer than this to the start
	RescheduleCutoff time.Duration
	Active           bool
	Version          int64 // optimistic concurrency; 0: not stored yet
	UpdatedAt        time.Time
}

// ClockRange is a span of wall-clock time within one local day, in minutes
// after midnight: [StartMinute, EndMinute).
type ClockRange struct {
	StartMinute int
	EndMinute   int
}

// StaffMember is a person who performs services.
type StaffMember struct {
	ID       string
	Name     string
	Skills   []string // sorted, unique
	TimeZone string   // IANA name; working hours are in this zone
	// Weekly working hours indexed by time.Weekday (0 = Sunday).
	Weekly    [7][]ClockRange
	Active    bool
	Version   int64
	UpdatedAt time.Time
}

// DateOverride replaces a staff member's weekly hours on one local date:
// Closed for a day off, or Ranges for different (e.g. extra) hours.
type DateOverride struct {
	StaffID string
	Date    string // YYYY-MM-DD in the staff member's zone
	Closed  bool
	Ranges  []ClockRange
}

// TimeOff blocks an absolute interval of a staff member's calendar.
type TimeOff struct {
	ID      string // ULID
	StaffID string
	Start   time.Time
	End     time.Time
	Reason  string
}

// Resource is a shared room or device with a capacity (a room for one, a
// sauna for four).
type Resource struct {
	ID        string
	Name      string
	Capacity  int
	Active    bool
	Version   int64
	UpdatedAt time.Time
}

// ---- Appointments --------------------------------------------------------

// AppointmentStatus is a stage of the appointment lifecycle:
// held → confirmed → completed | no_show | cancelled, and held → expired.
type AppointmentStatus string

// Appointment statuses.
const (
	StatusHeld      AppointmentStatus = "held"
	StatusConfirmed AppointmentStatus = "confirmed"
	StatusCompleted AppointmentStatus = "completed"
	StatusNoShow    AppointmentStatus = "no_show"
	StatusCancelled AppointmentStatus = "cancelled"
	StatusExpired   AppointmentStatus = "expired"
)

// Appointment is one booking of a service with a staff member.
type Appointment struct {
	ID            string // ULID
	StaffID       string
	ResourceID    string // "" when the service needs none
	ServiceID     string
	ClientID      string
	Start         time.Time
	End           time.Time // service time, buffers excluded
	BufferBefore  time.Duration
	BufferAfter   time.Duration
	Status        AppointmentStatus
	HoldExpiresAt time.Time // set while held; a hold past it blocks nothing
	PriceMinor    int64
	DepositMinor  int64
	CheckedInAt   time.Time // when the client arrived; zero until then
	Version       int64
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// Live reports whether a blocks its slot at now: confirmed, or held with
// an unexpired hold. Expiry needs no job to have run.
func (a Appointment) Live(now time.Time) bool {
	return a.Status == StatusConfirmed || (a.Status == StatusHeld && a.HoldExpiresAt.After(now))
}

// Transition records one status change of an appointment: who, when, why.
type Transition struct {
	ID            string // ULID
	AppointmentID string
	From          AppointmentStatus // "" for creation
	To            AppointmentStatus
	At            time.Time
	ActorID       string
	Reason        string
}

// AppointmentRange selects the appointments of one calendar: a staff
// member's (StaffID) or a resource's (ResourceID), overlapping [From, To).
type AppointmentRange struct {
	StaffID    string
	ResourceID string
	From, To   time.Time
	// LiveAt, when set, keeps only appointments Live at that instant.
	LiveAt time.Time
}

// BookingStore keeps the catalogue, calendars and appointments.
//
// Fencing: the actor owning a calendar (CalendarID "staff/<id>" or
// "resource/<id>") calls CalendarActivate when it starts, then loads the
// calendar; every transaction it writes begins with CalendarCheckEpoch. A
// write from an older activation is refused with ErrFenced, because the
// check and the writes share one serializable transaction. The load should
// run in the activating transaction, or begin with CalendarCheckEpoch too,
// so that it is ordered after the epoch bump.
//
// Input checks: malformed input (empty IDs, an end not after its start, a
// range ending before it starts, negative amounts or durations, durations
// with a fraction of a second, unknown statuses or deposit policies, limits
// out of range) is refused with an error wrapping ErrInvalid before any SQL
// runs; see the Normalize functions for each type. Durations are stored in
// whole seconds. Writes that reference a row of another table that does not
// exist (an override or time off of an unknown staff member, a transition of
// an unknown appointment) fail with ErrNotFound.
//
// Puts: the catalogue Puts (ServicePut, StaffPut, ResourcePut) behave like
// StudioPut: Version 0 on an existing ID, a stale Version, and a Version > 0
// for an ID that is not stored all return ErrConflict. They return the value
// as stored: skills sorted and unique, weekly ranges sorted by start, empty
// lists nil, UpdatedAt canonical.
//
// Lists return an empty slice, not an error, when nothing matches.
type BookingStore interface {
	// ServicePut creates (Version 0) or updates (stored Version must equal
	// s.Version) and returns s with Version incremented; ErrConflict on a
	// version mismatch.
	ServicePut(ctx context.Context, s Service) (Service, error)
	// ServiceGet returns the service or ErrNotFound.
	ServiceGet(ctx context.Context, id string) (Service, error)
	// ServiceList returns services ordered by ID, only active ones when
	// activeOnly.
	ServiceList(ctx context.Context, activeOnly bool) ([]Service, error)

	// StaffPut, StaffGet, StaffList: as for services.
	StaffPut(ctx context.Context, s StaffMember) (StaffMember, error)
	StaffGet(ctx context.Context, id string) (StaffMember, error)
	StaffList(ctx context.Context, activeOnly bool) ([]StaffMember, error)

	// DateOverridePut inserts or replaces the override of (StaffID, Date).
	DateOverridePut(ctx context.Context, o DateOverride) error
	// DateOverrideDelete removes it; ErrNotFound if absent.
	DateOverrideDelete(ctx context.Context, staffID, date string) error
	// DateOverrideList returns a staff member's overrides with fromDate <=
	// Date < toDate (YYYY-MM-DD), ordered by date.
	DateOverrideList(ctx context.Context, staffID, fromDate, toDate string) ([]DateOverride, error)

	// TimeOffAdd stores t; ErrConflict if its ID exists.
	TimeOffAdd(ctx context.Context, t TimeOff) error
	// TimeOffDelete removes it; ErrNotFound if absent.
	TimeOffDelete(ctx context.Context, id string) error
	// TimeOffList returns a staff member's time off overlapping [from, to)
	// (Start < to and End > from), ordered by (Start, ID).
	TimeOffList(ctx context.Context, staffID string, from, to time.Time) ([]TimeOff, error)

	// ResourcePut, ResourceGet, ResourceList: as for services.
	ResourcePut(ctx context.Context, r Resource) (Resource, error)
	ResourceGet(ctx context.Context, id string) (Resource, error)
	ResourceList(ctx context.Context, activeOnly bool) ([]Resource, error)

	// CalendarActivate increments the calendar's epoch (creating it at 1)
	// and returns the new value.
	CalendarActivate(ctx context.Context, calendarID string) (int64, error)
	// CalendarActivateAt makes epoch (>= 1, else ErrInvalid) the
	// calendar's epoch when the epoch is issued outside the database: in a
	// cluster, the lease token of the calendar's partition. A stored epoch
	// above it means a later owner activated the calendar: ErrFenced, and
	// nothing changes. The same epoch again is accepted (a later activation
	// under the same lease). Writes check the epoch with CalendarCheckEpoch
	// as usual, and a CalendarActivate afterwards continues above it. Both
	// drivers support it; only multi-node deployments (PostgreSQL or
	// CockroachDB) need it.
	CalendarActivateAt(ctx context.Context, calendarID string, epoch int64) error
	// CalendarCheckEpoch returns ErrFenced unless the calendar's epoch is
	// epoch; a calendar never activated fences every epoch.
	CalendarCheckEpoch(ctx context.Context, calendarID string, epoch int64) error

	// AppointmentInsert stores a new appointment at Version 1, whatever
	// a.Version says; ErrConflict if its ID exists. A held appointment
	// needs a HoldExpiresAt.
	// There is no database constraint against overlaps: preventing them is
	// the calendar actor's job, fenced by the epoch.
	AppointmentInsert(ctx context.Context, a Appointment) error
	// AppointmentUpdate replaces the appointment if its stored Version is
	// a.Version and returns it with Version incremented. CreatedAt is kept
	// as first stored (and returned so). ErrNotFound when the ID is not
	// stored, ErrConflict on a version mismatch, ErrInvalid for a.Version
	// < 1.
	AppointmentUpdate(ctx context.Context, a Appointment) (Appointment, error)
	// AppointmentGet returns the appointment or ErrNotFound.
	AppointmentGet(ctx context.Context, id string) (Appointment, error)
	// AppointmentList returns the appointments of one calendar overlapping
	// r's range, ordered by (Start, ID). Exactly one of r.StaffID and
	// r.ResourceID must be set (ErrInvalid otherwise). Overlap means
	// Start < r.To and End > r.From, so an appointment ending exactly at
	// r.From is not included, and From == To selects the appointments
	// with Start < From < End; To before From is ErrInvalid. Buffers are not part of the stored interval:
	// callers that need them widen [From, To) by the largest buffer and
	// apply each appointment's buffers themselves. When r.LiveAt is set,
	// only appointments Live at it are returned (confirmed, or held with
	// HoldExpiresAt > LiveAt).
	AppointmentList(ctx context.Context, r AppointmentRange) ([]Appointment, error)
	// AppointmentListByClient returns a client's appointments starting in
	// [from, to), ordered by (Start, ID), at most limit (1 ..
	// MaxAppointmentListLimit).
	AppointmentListByClient(ctx context.Context, clientID string, from, to time.Time, limit int) ([]Appointment, error)
	// AppointmentNoShows counts a client's appointments marked no-show
	// that started at or after since.
	AppointmentNoShows(ctx context.Context, clientID string, since time.Time) (int, error)
	// TransitionAppend records a status change; ErrConflict on a duplicate
	// ID.
	TransitionAppend(ctx context.Context, t Transition) error
	// TransitionList returns an appointment's transitions in ID (ULID)
	// order.
	TransitionList(ctx context.Context, appointmentID string) ([]Transition, error)
}
