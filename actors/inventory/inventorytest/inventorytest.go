// Package inventorytest gives the shop actors' tests their stores: a
// migrated SQLite store always, and a PostgreSQL one in a fresh schema
// when TEST_DATABASE_URL is set, plus a helper that stocks a variant.
package inventorytest

import (
	"context"
	"testing"
	"time"

	"github.com/spa-engine/spa/persistence/pgtest"

	"github.com/oklog/ulid/v2"

	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/sqlite/sqlitetest"
)

// Driver is one store to run a test against.
type Driver struct {
	Name string
	Open func(t testing.TB) persistence.Store
}

// Drivers lists SQLite, and PostgreSQL when TEST_DATABASE_URL is set.
func Drivers() []Driver {
	ds := []Driver{{Name: "sqlite", Open: func(t testing.TB) persistence.Store {
		return sqlitetest.Open(t, persistence.Options{})
	}}}
	if pgtest.Wanted() {
		ds = append(ds, Driver{Name: "postgres", Open: func(t testing.TB) persistence.Store {
			return pgtest.Open(t, "shop", persistence.Options{})
		}})
	}
	return ds
}

// Stock stores an active product and variant id with onHand units
// received, a regular price, a VIP price and a low-stock threshold.
func Stock(t testing.TB, st persistence.Store, id string, onHand, price, vipPrice, threshold int64) persistence.Variant {
	t.Helper()
	ctx := context.Background()
	var v persistence.Variant
	if err := st.InTx(ctx, func(tx persistence.Tx) (err error) {
		if _, err := tx.ProductPut(ctx, persistence.Product{ID: "p-" + id, Name: "Product " + id, Active: true}); err != nil {
			return err
		}
		v, err = tx.VariantPut(ctx, persistence.Variant{ID: id, ProductID: "p-" + id, SKU: "SKU-" + id,
			PriceMinor: price, VIPPriceMinor: vipPrice, TaxRateBP: 1900, LowStockThreshold: threshold, Active: true})
		if err != nil || onHand == 0 {
			return err
		}
		_, err = tx.StockMove(ctx, persistence.StockMovement{ID: ulid.Make().String(), VariantID: id,
			Kind: persistence.MoveReceipt, Qty: onHand, ActorID: "test", Reason: "initial stock", At: time.Now()})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return v
}
