package fault

import (
	"errors"
	"fmt"
	"testing"

	"github.com/spa-engine/spa/persistence"
)

func TestTableStatuses(t *testing.T) {
	want := map[string]int{
		CodeBadRequest: 400, CodeValidationFailed: 422, CodeUnauthenticated: 401, CodeForbidden: 403,
		CodeNotFound: 404, CodeConflict: 409, CodeVersionConflict: 409, CodeIdempotencyKeyInvalid: 400,
		CodeIdempotencyKeyReused: 422, CodeIdempotencyKeyInUse: 409, CodePayloadTooLarge: 413,
		CodeUnsupportedMediaType: 415, CodeRateLimited: 429, CodeUnavailable: 503, CodeTimeout: 504, CodeInternal: 500,
	}
	for code, status := range want {
		if e := New(code, ""); e.Status != status || e.Code != code || e.Message == "" {
			t.Errorf("%s: %+v", code, e)
		}
	}
	if e := New("made_up", "x"); e.Code != CodeInternal || e.Status != 500 {
		t.Errorf("unknown code: %+v", e)
	}
}

func TestIfNotFoundAndIfVersionConflict(t *testing.T) {
	missing := fmt.Errorf("order: %w", persistence.ErrNotFound)
	if e, ok := IfNotFound(missing, "order").(*Error); !ok || e.Code != CodeNotFound || e.Message != "order not found" {
		t.Errorf("IfNotFound(ErrNotFound) = %v", e)
	}
	stale := fmt.Errorf("service: %w", persistence.ErrConflict)
	e, ok := IfVersionConflict(stale, 3).(*Error)
	if !ok || e.Code != CodeVersionConflict || e.Details.(map[string]any)["version"] != int64(3) {
		t.Errorf("IfVersionConflict(ErrConflict) = %+v", e)
	}
	other := errors.New("disk full")
	if IfNotFound(other, "x") != other || IfVersionConflict(other, 1) != other || IfNotFound(nil, "x") != nil || IfVersionConflict(nil, 1) != nil {
		t.Error("other errors and nil must pass through unchanged")
	}
	if IfNotFound(stale, "x") != stale || IfVersionConflict(missing, 1) != missing {
		t.Error("each helper maps only its own sentinel")
	}
}
