package shop

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/oklog/ulid/v2"

	"github.com/spa-engine/spa/actors/inventory"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/check"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence"
)

// ---- Stock ---------------------------------------------------------------------

// Stock receipts, adjustments, damage and returns go through the
// variant's inventory actor, so that its memory stays the one truth about
// what can be reserved; the actor writes the movement and its audit entry
// in one transaction.

// askInventory sends m to a variant's inventory actor through inv with
// send (an inventory.Client method), mapping the transport failures every
// caller shares.
func askInventory[M, R any](ctx context.Context, inv *inventory.Client, send func(*inventory.Client, context.Context, string, M) (R, error), variantID string, m M) (R, error) {
	var zero R
	if inv == nil {
		return zero, fault.Unavailable("the shop's inventory is not running on this node")
	}
	r, err := send(inv, ctx, variantID, m)
	if err != nil {
		return zero, fault.Unavailable("the inventory did not answer in time; retry")
	}
	return r, nil
}

// inventoryFault maps an inventory actor's refusal.
func inventoryFault(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, inventory.ErrOutOfStock):
		return fault.New(fault.CodeOutOfStock, "")
	case errors.Is(err, inventory.ErrUnknownVariant):
		return fault.NotFound("variant not found")
	case errors.Is(err, inventory.ErrInvalid):
		return fault.Invalid("the stock movement is not valid")
	case errors.Is(err, inventory.ErrRetry):
		return fault.Unavailable("the inventory is busy recovering; retry")
	}
	return err
}

// StockLevel is a variant's stock now and its latest movements.
type StockLevel struct {
	Level     inventory.Level
	Movements []persistence.StockMovement // newest first, at most 50
}

// Stock returns a variant's stock as its inventory actor sees it, with
// its latest movements; admins only.
func (s *Service) Stock(ctx context.Context, by service.Caller, variantID string) (StockLevel, error) {
	if err := allow(by, adminRoles); err != nil {
		return StockLevel{}, err
	}
	if err := slugID("id", variantID); err != nil {
		return StockLevel{}, err
	}
	lvl, err := askInventory(ctx, s.inventory, (*inventory.Client).Level, variantID, &inventory.LevelQuery{})
	if err != nil {
		return StockLevel{}, err
	}
	if err := inventoryFault(lvl.Err); err != nil {
		return StockLevel{}, err
	}
	out := StockLevel{Level: *lvl}
	err = s.store.InTx(ctx, func(tx persistence.Tx) (err error) {
		out.Movements, err = tx.StockMovementList(ctx, variantID, 50)
		return err
	})
	if err != nil {
		return StockLevel{}, err
	}
	return out, nil
}

// MoveInput is a stock receipt, adjustment, damage or return.
type MoveInput struct {
	VariantID string `json:"-"`
	// ID names the movement; the gateway derives it from the
	// Idempotency-Key so a retry is not counted twice ("": a new one).
	ID     string `json:"-"`
	Kind   string `json:"kind"`
	Qty    int64  `json:"qty"`
	Reason string `json:"reason"`
}

// MoveStock records a movement through the variant's actor, with who and
// why, audited in the movement's transaction; admins only. It returns
// the stock after the movement.
func (s *Service) MoveStock(ctx context.Context, by service.Caller, in MoveInput) (inventory.Level, error) {
	if err := allow(by, adminRoles); err != nil {
		return inventory.Level{}, err
	}
	if err := slugID("id", in.VariantID); err != nil {
		return inventory.Level{}, err
	}
	var f check.Fields
	kind := persistence.MovementKind(in.Kind)
	switch kind {
	case persistence.MoveReceipt, persistence.MoveDamage, persistence.MoveReturn:
		if in.Qty < 1 || in.Qty > 1_000_000 {
			f.Add("qty", "must be 1 to 1000000")
		}
	case persistence.MoveAdjustment:
		if in.Qty == 0 || in.Qty < -1_000_000 || in.Qty > 1_000_000 {
			f.Add("qty", "must be a non-zero change of -1000000 to 1000000")
		}
	default:
		f.Add("kind", "must be receipt, adjustment, damage or return")
	}
	reason := f.Text("reason", in.Reason, 1, 500)
	if err := f.Err(); err != nil {
		return inventory.Level{}, err
	}
	now := s.now().UTC()
	id := in.ID
	if id == "" {
		id = ulid.Make().String()
	}
	mv := persistence.StockMovement{ID: id, VariantID: in.VariantID, Kind: kind, Qty: in.Qty, ActorID: by.Subject, Reason: reason, At: now}
	// The actor appends the entry in the movement's transaction, so it is
	// built here rather than with service.Audit; it keeps the reason in
	// its own column.
	detail, _ := json.Marshal(map[string]any{"kind": kind, "qty": in.Qty, "reason": reason})
	audit := persistence.AuditEntry{ID: ulid.Make().String(), At: now, ActorID: by.Subject, ActorRole: string(by.Role),
		Action: "shop.stock." + string(kind), Subject: "shop_variant/" + in.VariantID, RequestID: by.RequestID, Reason: reason, Detail: detail}
	mr, err := askInventory(ctx, s.inventory, (*inventory.Client).Move, in.VariantID, &inventory.Move{Movement: mv, Audit: &audit})
	if err != nil {
		return inventory.Level{}, err
	}
	if err := inventoryFault(mr.Err); err != nil {
		return inventory.Level{}, err
	}
	return mr.Level, nil
}
