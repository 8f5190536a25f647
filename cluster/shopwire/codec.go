package shopwire

import (
	"strconv"
	"strings"

	"github.com/spa-engine/spa/actors/cart"
	"github.com/spa-engine/spa/actors/inventory"
	"github.com/spa-engine/spa/cluster/route"
)

// InventoryCodec is the inventory router's codec: actors placed by
// "inventory/<variant>", requests keyed by reservation or movement.
func InventoryCodec() route.Codec {
	return route.CodecOf(inventory.PlacementKey, EncodeInventory, DecodeInventory, EncodeInventoryReply, DecodeInventoryReply, inventoryKey)
}

// CartCodec is the cart router's codec: actors placed by "cart/<id>";
// only the requests safe to apply twice are keyed.
func CartCodec() route.Codec {
	return route.CodecOf(cart.PlacementKey, EncodeCart, DecodeCart, EncodeCartReply, DecodeCartReply, cartKey)
}

// inventoryKey names an inventory request across retries (the ids are
// the caller's, stable across its retries).
func inventoryKey(msg any) string {
	switch m := msg.(type) {
	case *inventory.Reserve:
		return "reserve/" + m.ReservationID + "/" + strconv.FormatInt(m.Qty, 10)
	case *inventory.Release:
		return "release/" + m.ReservationID
	case *inventory.Consumed:
		return "consumed/" + strings.Join(m.ReservationIDs, ",")
	case *inventory.Move:
		return "move/" + m.Movement.ID
	case *inventory.LevelQuery:
		return "level" // a read
	}
	return ""
}

// cartKey names the cart requests that are safe to apply twice: Create
// and Surrender are not (a second Create is refused as a duplicate; a
// second Surrender finds the cart already emptied), so a timed-out try of
// either is not resent (forward.Request).
func cartKey(msg any) string {
	switch m := msg.(type) {
	case *cart.Checkout:
		return "checkout/" + m.OrderID
	case *cart.Get:
		return "get" // a read (that may refresh reservations)
	case *cart.SetLine:
		return "setline/" + m.VariantID + "/" + strconv.FormatInt(m.Qty, 10) // sets, does not add
	}
	return ""
}
