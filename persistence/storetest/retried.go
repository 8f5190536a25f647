package storetest

import (
	"context"
	"errors"

	"github.com/spa-engine/spa/persistence"
)

// Retried is a store whose every transaction runs twice: once rolled back,
// as a transaction PostgreSQL fails at COMMIT with a serialization failure
// is, then again for real, as the driver retries it. A caller whose fn
// carries something from the first run into the second (a version counted
// up in a variable the closure assigns) fails on it.
type Retried struct{ persistence.Store }

var errRolledBack = errors.New("storetest: the first attempt is rolled back")

// InTx runs fn in a transaction that is rolled back, then in one that
// commits.
func (s Retried) InTx(ctx context.Context, fn func(persistence.Tx) error) error {
	err := s.Store.InTx(ctx, func(tx persistence.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return errRolledBack
	})
	if !errors.Is(err, errRolledBack) {
		return err
	}
	return s.Store.InTx(ctx, fn)
}
