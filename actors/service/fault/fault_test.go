package fault

import "testing"

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
