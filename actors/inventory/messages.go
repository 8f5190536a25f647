package inventory

import (
	"errors"
	"time"

	"github.com/spa-engine/spa/persistence"
)

// The requests an inventory actor answers, each with exactly one reply:
// *ReserveReply for Reserve, *Level for LevelQuery, *MoveReply for Move and
// *Reply for Release and Consumed. Errors travel as values in the replies.

// Reserve holds Qty units for a cart until TTL from now. A reservation
// the actor holds under ReservationID is resized and its expiry refreshed
// (a cart line changed, or kept alive); otherwise a new one is made unless
// Resize is set, in which case ErrExpired says the old one lapsed and the
// caller should reserve afresh under a new id. A cart holds at most one
// live reservation of a variant: a new one asked for by a cart that holds
// one already is that one, resized (two activations of the cart during a
// hand-off, or a retried line change, cannot take the units twice), and
// the reply names it. It is decided in memory
// (units held by unexpired reservations, pending ones included, are
// taken) and answered once durable; a shortage is refused at once with
// ErrOutOfStock.
type Reserve struct {
	ReservationID string
	CartID        string
	Qty           int64
	TTL           time.Duration
	Resize        bool
	ActorID       string // who, for the movement log
}

// ReserveReply answers Reserve. Available is what is left for others
// after the decision; ReservationID is the reservation that holds a
// granted request's units.
type ReserveReply struct {
	ReservationID string
	ExpiresAt     time.Time
	Available     int64
	Err           error
}

// Release gives a reservation's units back (a line removed, a cart
// abandoned). Releasing an unknown or lapsed reservation is not an error.
type Release struct {
	ReservationID string
	Reason        string
	ActorID       string
}

// Consumed tells the actor that checkout turned these reservations into
// sales (ReservationConsume, committed), so its memory drops them from on
// hand. It is a notice, not a request for permission.
type Consumed struct{ ReservationIDs []string }

// Move applies a receipt, adjustment, damage or return (who and why in
// the movement). Taking stock that reservations hold is refused with
// ErrOutOfStock. Audit, when set, is appended in the same transaction.
type Move struct {
	Movement persistence.StockMovement
	Audit    *persistence.AuditEntry
}

// MoveReply answers Move with the new level.
type MoveReply struct {
	Level Level
	Err   error
}

// LevelQuery asks for the variant's stock at now.
type LevelQuery struct{}

// Level is a variant's stock as its actor sees it at one instant.
type Level struct {
	VariantID string
	OnHand    int64
	Held      int64 // units held by unexpired reservations
	Available int64 // OnHand - Held
	Threshold int64
	Err       error
}

// Reply answers Release and Consumed.
type Reply struct{ Err error }

// Errors carried in replies.
var (
	// ErrOutOfStock: fewer units are available than asked for.
	ErrOutOfStock = errors.New("inventory: out of stock")
	// ErrExpired: the reservation to resize has lapsed or was released.
	ErrExpired = errors.New("inventory: reservation expired")
	// ErrInvalid: the request is malformed.
	ErrInvalid = errors.New("inventory: invalid request")
	// ErrUnknownVariant: the variant does not exist (or is inactive, for a
	// reservation).
	ErrUnknownVariant = errors.New("inventory: unknown or inactive variant")
	// ErrRetry: nothing was decided (the write failed, or a newer
	// activation took the variant over); the request may be retried.
	ErrRetry = errors.New("inventory: not decided; retry")
)

// refusal builds the reply type msg expects, carrying err.
func refusal(msg any, err error) any {
	switch msg.(type) {
	case *Reserve:
		return &ReserveReply{Err: err}
	case *Move:
		return &MoveReply{Err: err}
	case *LevelQuery:
		return &Level{Err: err}
	default:
		return &Reply{Err: err}
	}
}
