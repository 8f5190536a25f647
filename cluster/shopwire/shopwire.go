// Package shopwire encodes the shop actors' requests and replies
// (actors/inventory, one actor per variant; actors/cart, one per cart) as
// the protobuf messages of messages/shop.proto, so they can travel to the
// node that owns the variant or cart (part of cluster/: cluster/route
// sends them through cluster/forward). Every field travels on its own,
// the stored Cart and Order structs included; the only bytes fields are
// the ones the Go structs hold as bytes themselves (a cart's token hash,
// an audit entry's JSON document).
//
// Errors travel as the codes of every sentinel the error matches plus its
// full text: a cart refusal may wrap a store error
// (persistence.ErrInsufficientCredit inside cart.ErrInvalid) and the
// gateway tells them apart. Decoding rebuilds an error that matches the
// same sentinels with errors.Is, so the gateway maps a remote refusal
// exactly as a local one.
package shopwire

import (
	"errors"
	"fmt"
	"time"

	"github.com/spa-engine/spa/actors/cart"
	"github.com/spa-engine/spa/actors/inventory"
	"github.com/spa-engine/spa/actors/keyed"
	"github.com/spa-engine/spa/cluster/route"
	"github.com/spa-engine/spa/cluster/wire"
	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/money"
)

// ErrUnsupported: the value is not a shop message this package knows.
var ErrUnsupported = errors.New("shopwire: unsupported message")

// sentinels pairs each error code with the error it stands for.
var sentinels = wire.Sentinels[messages.ShopError_Code]{
	{Code: messages.ShopError_CODE_INVENTORY_OUT_OF_STOCK, Err: inventory.ErrOutOfStock},
	{Code: messages.ShopError_CODE_INVENTORY_EXPIRED, Err: inventory.ErrExpired},
	{Code: messages.ShopError_CODE_INVENTORY_INVALID, Err: inventory.ErrInvalid},
	{Code: messages.ShopError_CODE_INVENTORY_UNKNOWN_VARIANT, Err: inventory.ErrUnknownVariant},
	{Code: messages.ShopError_CODE_INVENTORY_RETRY, Err: inventory.ErrRetry},
	{Code: messages.ShopError_CODE_CART_NOT_FOUND, Err: cart.ErrNotFound},
	{Code: messages.ShopError_CODE_CART_EXISTS, Err: cart.ErrExists},
	{Code: messages.ShopError_CODE_CART_CLOSED, Err: cart.ErrClosed},
	{Code: messages.ShopError_CODE_CART_EMPTY, Err: cart.ErrEmpty},
	{Code: messages.ShopError_CODE_CART_OUT_OF_STOCK, Err: cart.ErrOutOfStock},
	{Code: messages.ShopError_CODE_CART_UNKNOWN_VARIANT, Err: cart.ErrUnknownVariant},
	{Code: messages.ShopError_CODE_CART_SIGN_IN_REQUIRED, Err: cart.ErrSignInRequired},
	{Code: messages.ShopError_CODE_CART_INVALID, Err: cart.ErrInvalid},
	{Code: messages.ShopError_CODE_CART_RETRY, Err: cart.ErrRetry},
	{Code: messages.ShopError_CODE_CART_RESERVATION_LAPSED, Err: cart.ErrReservationLapsed},
	{Code: messages.ShopError_CODE_STORE_NOT_FOUND, Err: persistence.ErrNotFound},
	{Code: messages.ShopError_CODE_STORE_CONFLICT, Err: persistence.ErrConflict},
	{Code: messages.ShopError_CODE_STORE_INVALID, Err: persistence.ErrInvalid},
	{Code: messages.ShopError_CODE_STORE_INSUFFICIENT_CREDIT, Err: persistence.ErrInsufficientCredit},
	{Code: messages.ShopError_CODE_AMOUNT_OUT_OF_RANGE, Err: money.ErrOutOfRange},
	{Code: messages.ShopError_CODE_STORE_FENCED, Err: persistence.ErrFenced},
	{Code: messages.ShopError_CODE_KEY_REUSED, Err: keyed.ErrReused},
	{Code: messages.ShopError_CODE_KEY_ELSEWHERE, Err: keyed.ErrElsewhere},
}

func encodeErr(err error) *messages.ShopError {
	if err == nil {
		return nil
	}
	return &messages.ShopError{Message: err.Error(), Codes: sentinels.Codes(err)}
}

func decodeErr(e *messages.ShopError) error {
	if e == nil {
		return nil
	}
	return wire.Error(e.GetMessage(), sentinels.Errs(e.GetCodes()...))
}

// ---- Inventory -------------------------------------------------------------

func movement(m persistence.StockMovement) *messages.ShopStockMovement {
	return &messages.ShopStockMovement{Id: m.ID, VariantId: m.VariantID, Kind: string(m.Kind), Qty: m.Qty, ActorId: m.ActorID,
		Reason: m.Reason, Reference: m.Reference, At: wire.TS(m.At)}
}

func fromMovement(m *messages.ShopStockMovement) persistence.StockMovement {
	return persistence.StockMovement{ID: m.GetId(), VariantID: m.GetVariantId(), Kind: persistence.MovementKind(m.GetKind()),
		Qty: m.GetQty(), ActorID: m.GetActorId(), Reason: m.GetReason(), Reference: m.GetReference(), At: wire.TM(m.GetAt())}
}

func audit(a *persistence.AuditEntry) *messages.ShopAuditEntry {
	if a == nil {
		return nil
	}
	return &messages.ShopAuditEntry{Id: a.ID, At: wire.TS(a.At), ActorId: a.ActorID, ActorRole: a.ActorRole, Action: a.Action,
		Subject: a.Subject, RequestId: a.RequestID, Reason: a.Reason, Detail: a.Detail}
}

func fromAudit(a *messages.ShopAuditEntry) *persistence.AuditEntry {
	if a == nil {
		return nil
	}
	return &persistence.AuditEntry{ID: a.GetId(), At: wire.TM(a.GetAt()), ActorID: a.GetActorId(), ActorRole: a.GetActorRole(),
		Action: a.GetAction(), Subject: a.GetSubject(), RequestID: a.GetRequestId(), Reason: a.GetReason(), Detail: a.GetDetail()}
}

func level(l inventory.Level) *messages.InventoryLevel {
	return &messages.InventoryLevel{VariantId: l.VariantID, OnHand: l.OnHand, Held: l.Held, Available: l.Available,
		Threshold: l.Threshold, Error: encodeErr(l.Err)}
}

func fromLevel(l *messages.InventoryLevel) inventory.Level {
	return inventory.Level{VariantID: l.GetVariantId(), OnHand: l.GetOnHand(), Held: l.GetHeld(), Available: l.GetAvailable(),
		Threshold: l.GetThreshold(), Err: decodeErr(l.GetError())}
}

// EncodeInventory encodes a request to variantID's inventory actor.
func EncodeInventory(variantID string, msg any) (*messages.InventoryRequest, error) {
	r := &messages.InventoryRequest{VariantId: variantID}
	switch m := msg.(type) {
	case *inventory.Reserve:
		r.Request = &messages.InventoryRequest_Reserve{Reserve: &messages.InventoryReserve{ReservationId: m.ReservationID,
			CartId: m.CartID, Qty: m.Qty, TtlNs: int64(m.TTL), Resize: m.Resize, ActorId: m.ActorID}}
	case *inventory.Release:
		r.Request = &messages.InventoryRequest_Release{Release: &messages.InventoryRelease{ReservationId: m.ReservationID,
			Reason: m.Reason, ActorId: m.ActorID}}
	case *inventory.Consumed:
		r.Request = &messages.InventoryRequest_Consumed{Consumed: &messages.InventoryConsumed{ReservationIds: m.ReservationIDs}}
	case *inventory.Move:
		r.Request = &messages.InventoryRequest_Move{Move: &messages.InventoryMove{Movement: movement(m.Movement), Audit: audit(m.Audit)}}
	case *inventory.LevelQuery:
		r.Request = &messages.InventoryRequest_Level{Level: &messages.InventoryLevelQuery{}}
	case *route.Invalidate:
		r.Request = &messages.InventoryRequest_Invalidate{Invalidate: &messages.InventoryInvalidate{}}
	default:
		return nil, fmt.Errorf("%w: %T for an inventory actor", ErrUnsupported, msg)
	}
	return r, nil
}

// DecodeInventory decodes a request to an inventory actor: the variant id
// and the message the actor answers.
func DecodeInventory(r *messages.InventoryRequest) (string, any, error) {
	var msg any
	switch m := r.GetRequest().(type) {
	case *messages.InventoryRequest_Reserve:
		x := m.Reserve
		msg = &inventory.Reserve{ReservationID: x.GetReservationId(), CartID: x.GetCartId(), Qty: x.GetQty(),
			TTL: time.Duration(x.GetTtlNs()), Resize: x.GetResize(), ActorID: x.GetActorId()}
	case *messages.InventoryRequest_Release:
		x := m.Release
		msg = &inventory.Release{ReservationID: x.GetReservationId(), Reason: x.GetReason(), ActorID: x.GetActorId()}
	case *messages.InventoryRequest_Consumed:
		msg = &inventory.Consumed{ReservationIDs: m.Consumed.GetReservationIds()}
	case *messages.InventoryRequest_Move:
		if m.Move.GetMovement() == nil {
			return "", nil, fmt.Errorf("%w: stock move without a movement", ErrUnsupported)
		}
		msg = &inventory.Move{Movement: fromMovement(m.Move.GetMovement()), Audit: fromAudit(m.Move.GetAudit())}
	case *messages.InventoryRequest_Level:
		msg = &inventory.LevelQuery{}
	case *messages.InventoryRequest_Invalidate:
		msg = &route.Invalidate{}
	default:
		return "", nil, fmt.Errorf("%w: inventory request without a known body", ErrUnsupported)
	}
	if r.GetVariantId() == "" {
		return "", nil, fmt.Errorf("%w: inventory request without a variant id", ErrUnsupported)
	}
	return r.GetVariantId(), msg, nil
}

// EncodeInventoryReply encodes an inventory actor's reply.
func EncodeInventoryReply(reply any) (*messages.InventoryReply, error) {
	switch r := reply.(type) {
	case *inventory.ReserveReply:
		return &messages.InventoryReply{Kind: messages.InventoryReply_KIND_RESERVE, ExpiresAt: wire.TS(r.ExpiresAt),
			Available: r.Available, ReservationId: r.ReservationID, Error: encodeErr(r.Err)}, nil
	case *inventory.Level:
		return &messages.InventoryReply{Kind: messages.InventoryReply_KIND_LEVEL, Level: level(*r)}, nil
	case *inventory.MoveReply:
		return &messages.InventoryReply{Kind: messages.InventoryReply_KIND_MOVE, Level: level(r.Level), Error: encodeErr(r.Err)}, nil
	case *inventory.Reply:
		return &messages.InventoryReply{Kind: messages.InventoryReply_KIND_REPLY, Error: encodeErr(r.Err)}, nil
	case *route.Invalidated:
		return &messages.InventoryReply{Kind: messages.InventoryReply_KIND_INVALIDATED}, nil
	}
	return nil, fmt.Errorf("%w: %T as an inventory reply", ErrUnsupported, reply)
}

// DecodeInventoryReply decodes an inventory actor's reply into the type
// the request expects.
func DecodeInventoryReply(r *messages.InventoryReply) (any, error) {
	switch r.GetKind() {
	case messages.InventoryReply_KIND_RESERVE:
		return &inventory.ReserveReply{ExpiresAt: wire.TM(r.GetExpiresAt()), Available: r.GetAvailable(),
			ReservationID: r.GetReservationId(), Err: decodeErr(r.GetError())}, nil
	case messages.InventoryReply_KIND_LEVEL:
		l := fromLevel(r.GetLevel())
		return &l, nil
	case messages.InventoryReply_KIND_MOVE:
		return &inventory.MoveReply{Level: fromLevel(r.GetLevel()), Err: decodeErr(r.GetError())}, nil
	case messages.InventoryReply_KIND_REPLY:
		return &inventory.Reply{Err: decodeErr(r.GetError())}, nil
	case messages.InventoryReply_KIND_INVALIDATED:
		return &route.Invalidated{}, nil
	}
	return nil, fmt.Errorf("%w: inventory reply kind %v", ErrUnsupported, r.GetKind())
}

// ---- Carts -----------------------------------------------------------------

func auth(a cart.Auth) *messages.CartAuth {
	return &messages.CartAuth{Subject: a.Subject, Token: a.Token}
}

func fromAuth(a *messages.CartAuth) cart.Auth {
	return cart.Auth{Subject: a.GetSubject(), Token: a.GetToken()}
}

func shipping(s persistence.ShippingAddress) *messages.ShopShippingAddress {
	return &messages.ShopShippingAddress{Recipient: s.Recipient, Phone: s.Phone, Line1: s.Line1, Line2: s.Line2,
		DepartmentCode: s.DepartmentCode, MunicipalityCode: s.MunicipalityCode, PostalCode: s.PostalCode, Notes: s.Notes}
}

func fromShipping(s *messages.ShopShippingAddress) persistence.ShippingAddress {
	return persistence.ShippingAddress{Recipient: s.GetRecipient(), Phone: s.GetPhone(), Line1: s.GetLine1(), Line2: s.GetLine2(),
		DepartmentCode: s.GetDepartmentCode(), MunicipalityCode: s.GetMunicipalityCode(), PostalCode: s.GetPostalCode(),
		Notes: s.GetNotes()}
}

func storedCart(c persistence.Cart) *messages.ShopCart {
	return &messages.ShopCart{Id: c.ID, OwnerId: c.OwnerID, TokenHash: c.TokenHash, State: string(c.State), OrderId: c.OrderID,
		MergedInto: c.MergedInto, ExpiresAt: wire.TS(c.ExpiresAt), Version: c.Version, CreatedAt: wire.TS(c.CreatedAt), UpdatedAt: wire.TS(c.UpdatedAt)}
}

func fromStoredCart(c *messages.ShopCart) persistence.Cart {
	return persistence.Cart{ID: c.GetId(), OwnerID: c.GetOwnerId(), TokenHash: c.GetTokenHash(), State: persistence.CartState(c.GetState()),
		OrderID: c.GetOrderId(), MergedInto: c.GetMergedInto(), ExpiresAt: wire.TM(c.GetExpiresAt()), Version: c.GetVersion(),
		CreatedAt: wire.TM(c.GetCreatedAt()), UpdatedAt: wire.TM(c.GetUpdatedAt())}
}

func view(v *cart.View) *messages.CartView {
	out := &messages.CartView{Cart: storedCart(v.Cart), SubtotalMinor: v.SubtotalMinor, TaxMinor: v.TaxMinor, TotalMinor: v.TotalMinor}
	for _, l := range v.Lines {
		out.Lines = append(out.Lines, &messages.CartLine{VariantId: l.VariantID, ProductId: l.ProductID, Sku: l.SKU, Name: l.Name,
			Qty: l.Qty, UnitPriceMinor: l.UnitPriceMinor, TaxRateBp: int64(l.TaxRateBP), ReservationId: l.ReservationID,
			ExpiresAt: wire.TS(l.ExpiresAt)})
	}
	return out
}

func fromView(v *messages.CartView, err error) *cart.View {
	out := &cart.View{Cart: fromStoredCart(v.GetCart()), SubtotalMinor: v.GetSubtotalMinor(), TaxMinor: v.GetTaxMinor(),
		TotalMinor: v.GetTotalMinor(), Err: err}
	for _, l := range v.GetLines() {
		out.Lines = append(out.Lines, cart.Line{VariantID: l.GetVariantId(), ProductID: l.GetProductId(), SKU: l.GetSku(),
			Name: l.GetName(), Qty: l.GetQty(), UnitPriceMinor: l.GetUnitPriceMinor(), TaxRateBP: int(l.GetTaxRateBp()),
			ReservationID: l.GetReservationId(), ExpiresAt: wire.TM(l.GetExpiresAt())})
	}
	return out
}

func order(o persistence.Order) *messages.ShopOrder {
	out := &messages.ShopOrder{Id: o.ID, ClientId: o.ClientID, CartId: o.CartID, Status: string(o.Status),
		SubtotalMinor: o.SubtotalMinor, TaxMinor: o.TaxMinor, CreditAppliedMinor: o.CreditAppliedMinor, TotalMinor: o.TotalMinor,
		Fulfilment: string(o.Fulfilment), Shipping: shipping(o.Shipping), CreatedAt: wire.TS(o.CreatedAt), UpdatedAt: wire.TS(o.UpdatedAt),
		ExpiresAt: wire.TS(o.ExpiresAt), Version: o.Version}
	for _, l := range o.Lines {
		out.Lines = append(out.Lines, &messages.ShopOrderLine{Id: l.ID, VariantId: l.VariantID, Sku: l.SKU, Name: l.Name,
			Qty: int64(l.Qty), UnitPriceMinor: l.UnitPriceMinor, TaxRateBps: int64(l.TaxRateBps), ReservationId: l.ReservationID,
			ReturnedQty: int64(l.ReturnedQty)})
	}
	return out
}

func fromOrder(o *messages.ShopOrder) persistence.Order {
	out := persistence.Order{ID: o.GetId(), ClientID: o.GetClientId(), CartID: o.GetCartId(), Status: persistence.OrderStatus(o.GetStatus()),
		SubtotalMinor: o.GetSubtotalMinor(), TaxMinor: o.GetTaxMinor(), CreditAppliedMinor: o.GetCreditAppliedMinor(),
		TotalMinor: o.GetTotalMinor(), Fulfilment: persistence.Fulfilment(o.GetFulfilment()), Shipping: fromShipping(o.GetShipping()),
		CreatedAt: wire.TM(o.GetCreatedAt()), UpdatedAt: wire.TM(o.GetUpdatedAt()), ExpiresAt: wire.TM(o.GetExpiresAt()), Version: o.GetVersion()}
	for _, l := range o.GetLines() {
		out.Lines = append(out.Lines, persistence.OrderLine{ID: l.GetId(), VariantID: l.GetVariantId(), SKU: l.GetSku(), Name: l.GetName(),
			Qty: int(l.GetQty()), UnitPriceMinor: l.GetUnitPriceMinor(), TaxRateBps: int(l.GetTaxRateBps()),
			ReservationID: l.GetReservationId(), ReturnedQty: int(l.GetReturnedQty())})
	}
	return out
}

// EncodeCart encodes a request to cartID's cart actor.
func EncodeCart(cartID string, msg any) (*messages.CartRequest, error) {
	r := &messages.CartRequest{CartId: cartID}
	switch m := msg.(type) {
	case *cart.Create:
		r.Request = &messages.CartRequest_Create{Create: &messages.CartCreate{OwnerId: m.OwnerID, TokenHash: m.TokenHash, Vip: m.VIP}}
	case *cart.Get:
		r.Request = &messages.CartRequest_Get{Get: &messages.CartGet{Auth: auth(m.Auth), Vip: m.VIP}}
	case *cart.SetLine:
		r.Request = &messages.CartRequest_SetLine{SetLine: &messages.CartSetLine{Auth: auth(m.Auth), VariantId: m.VariantID,
			Qty: m.Qty, Vip: m.VIP}}
		r.Key = wire.Key(m.Key)
	case *cart.Surrender:
		r.Request = &messages.CartRequest_Surrender{Surrender: &messages.CartSurrender{Auth: auth(m.Auth), IntoCartId: m.IntoCartID}}
	case *cart.Checkout:
		r.Request = &messages.CartRequest_Checkout{Checkout: &messages.CartCheckout{Auth: auth(m.Auth), OrderId: m.OrderID,
			Fulfilment: string(m.Fulfilment), Shipping: shipping(m.Shipping), CreditMinor: m.CreditMinor, Vip: m.VIP}}
		r.Key = wire.Key(m.Key)
	default:
		return nil, fmt.Errorf("%w: %T for a cart actor", ErrUnsupported, msg)
	}
	return r, nil
}

// DecodeCart decodes a request to a cart actor: the cart id and the
// message the actor answers.
func DecodeCart(r *messages.CartRequest) (string, any, error) {
	var msg any
	switch m := r.GetRequest().(type) {
	case *messages.CartRequest_Create:
		msg = &cart.Create{OwnerID: m.Create.GetOwnerId(), TokenHash: m.Create.GetTokenHash(), VIP: m.Create.GetVip()}
	case *messages.CartRequest_Get:
		msg = &cart.Get{Auth: fromAuth(m.Get.GetAuth()), VIP: m.Get.GetVip()}
	case *messages.CartRequest_SetLine:
		x := m.SetLine
		msg = &cart.SetLine{Auth: fromAuth(x.GetAuth()), VariantID: x.GetVariantId(), Qty: x.GetQty(), VIP: x.GetVip(),
			Key: wire.FromKey(r.GetKey())}
	case *messages.CartRequest_Surrender:
		msg = &cart.Surrender{Auth: fromAuth(m.Surrender.GetAuth()), IntoCartID: m.Surrender.GetIntoCartId()}
	case *messages.CartRequest_Checkout:
		x := m.Checkout
		msg = &cart.Checkout{Auth: fromAuth(x.GetAuth()), OrderID: x.GetOrderId(), Fulfilment: persistence.Fulfilment(x.GetFulfilment()),
			Shipping: fromShipping(x.GetShipping()), CreditMinor: x.GetCreditMinor(), VIP: x.GetVip(), Key: wire.FromKey(r.GetKey())}
	default:
		return "", nil, fmt.Errorf("%w: cart request without a known body", ErrUnsupported)
	}
	if r.GetCartId() == "" {
		return "", nil, fmt.Errorf("%w: cart request without a cart id", ErrUnsupported)
	}
	return r.GetCartId(), msg, nil
}

// EncodeCartReply encodes a cart actor's reply.
func EncodeCartReply(reply any) (*messages.CartReply, error) {
	switch r := reply.(type) {
	case *cart.View:
		return &messages.CartReply{Kind: messages.CartReply_KIND_VIEW, View: view(r), Error: encodeErr(r.Err), Replayed: r.Replayed}, nil
	case *cart.CheckoutReply:
		return &messages.CartReply{Kind: messages.CartReply_KIND_CHECKOUT, Order: order(r.Order), Error: encodeErr(r.Err),
			Replayed: r.Replayed}, nil
	case *cart.SurrenderReply:
		return &messages.CartReply{Kind: messages.CartReply_KIND_SURRENDER, Surrendered: r.Lines, Error: encodeErr(r.Err)}, nil
	}
	return nil, fmt.Errorf("%w: %T as a cart reply", ErrUnsupported, reply)
}

// DecodeCartReply decodes a cart actor's reply into the type the request
// expects.
func DecodeCartReply(r *messages.CartReply) (any, error) {
	switch r.GetKind() {
	case messages.CartReply_KIND_VIEW:
		v := fromView(r.GetView(), decodeErr(r.GetError()))
		v.Replayed = r.GetReplayed()
		return v, nil
	case messages.CartReply_KIND_CHECKOUT:
		return &cart.CheckoutReply{Order: fromOrder(r.GetOrder()), Err: decodeErr(r.GetError()), Replayed: r.GetReplayed()}, nil
	case messages.CartReply_KIND_SURRENDER:
		lines := r.GetSurrendered()
		if len(lines) == 0 {
			lines = nil
		}
		return &cart.SurrenderReply{Lines: lines, Err: decodeErr(r.GetError())}, nil
	}
	return nil, fmt.Errorf("%w: cart reply kind %v", ErrUnsupported, r.GetKind())
}
