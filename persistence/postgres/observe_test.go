package postgres

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestRetryCause(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&pgconn.PgError{Code: "40001", Message: "could not serialize access due to read/write dependencies among transactions"}, "rw_dependency"},
		{fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: "40001", Message: "could not serialize access due to concurrent update"}), "concurrent_update"},
		{&pgconn.PgError{Code: "40001", Message: "restart transaction: TransactionRetryWithProtoRefreshError: TransactionRetryError: retry txn (RETRY_SERIALIZABLE - failed preemptive refresh): \"sql txn\" meta={id=1}"}, "retry_serializable"},
		{&pgconn.PgError{Code: "40001", Message: "restart transaction: TransactionRetryWithProtoRefreshError: WriteTooOldError: write for key /Table/1 at timestamp 1 too old"}, "writetooold"},
		{&pgconn.PgError{Code: "40001", Message: "something new"}, "serialization_failure"},
		{&pgconn.PgError{Code: "40P01", Message: "deadlock detected"}, "deadlock"},
		{errors.New("connection reset"), "other"},
		{nil, "at_release"},
	} {
		if got := retryCause(tc.err); got != tc.want {
			t.Errorf("retryCause(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
