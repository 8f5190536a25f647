package inventory

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/inventory/inventorytest"
)

// BenchmarkReserve: parallel carts each reserving one unit of a variant
// with plenty of stock (SQLite, through the directory), so every request
// waits for group commit. BenchmarkRefuse is the same traffic on a sold-out
// variant, answered from memory: the ratio of the two is the cost of
// durability.
func BenchmarkReserve(b *testing.B) { benchReserve(b, 1<<40, nil) }

// BenchmarkRefuse: see BenchmarkReserve.
func BenchmarkRefuse(b *testing.B) { benchReserve(b, 0, ErrOutOfStock) }

func benchReserve(b *testing.B, units int64, want error) {
	st := inventorytest.Drivers()[0].Open(b)
	inventorytest.Stock(b, st, "oil", units, 100, 0, 0)
	f := newFixture(b, st)
	var n atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := fmt.Sprintf("r%d", n.Add(1))
			r, err := f.dir.Ask(context.Background(), "oil", &Reserve{ReservationID: id, CartID: "c" + id, Qty: 1, TTL: time.Hour})
			if err != nil {
				b.Fatal(err)
			}
			if got := r.(*ReserveReply).Err; !errors.Is(got, want) && got != want {
				b.Fatalf("reserve: %v, want %v", got, want)
			}
		}
	})
}
