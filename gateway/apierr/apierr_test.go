package apierr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/spa-engine/spa/gateway/reqctx"
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

func TestFrom(t *testing.T) {
	cases := []struct {
		err  error
		code string
		safe bool
	}{
		{fmt.Errorf("wrap: %w", persistence.ErrNotFound), CodeNotFound, true},
		{fmt.Errorf("wrap: %w", persistence.ErrConflict), CodeConflict, true},
		{fmt.Errorf("wrap: %w", persistence.ErrUnavailable), CodeUnavailable, false},
		{fmt.Errorf("wrap: %w", persistence.ErrInvalid), CodeValidationFailed, false},
		{fmt.Errorf("wrap: %w", persistence.ErrFenced), CodeUnavailable, false},
		{context.DeadlineExceeded, CodeTimeout, false},
		{fiber.ErrRequestEntityTooLarge, CodePayloadTooLarge, true},
		{fiber.NewError(404, "Cannot GET /secret"), CodeNotFound, true},
		{fiber.ErrMethodNotAllowed, CodeMethodNotAllowed, true},
		{fiber.ErrTeapot, CodeBadRequest, true},
		{fiber.ErrInternalServerError, CodeInternal, true},
		{fmt.Errorf("handler: %w", Forbidden("")), CodeForbidden, true},
		{errors.New("sql: secret"), CodeInternal, false},
	}
	for _, tc := range cases {
		e, safe := From(tc.err)
		if e.Code != tc.code || safe != tc.safe {
			t.Errorf("From(%v) = %s safe=%v, want %s safe=%v", tc.err, e.Code, safe, tc.code, tc.safe)
		}
		if e.Message == tc.err.Error() {
			t.Errorf("From(%v) echoed the error text", tc.err)
		}
	}
	if !IsClientError(Invalid("x")) || IsClientError(errors.New("x")) {
		t.Error("IsClientError")
	}
}

func TestWriteShape(t *testing.T) {
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/", func(c *fiber.Ctx) error {
		reqctx.SetRequestID(c, "rid-1")
		return Write(c, Invalid("bad input", FieldError{Field: "name", Message: "required"}))
	})
	res, err := app.Test(httptest.NewRequest("GET", "/", nil), -1)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	var got map[string]map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	e := got["error"]
	if res.StatusCode != 422 || e["code"] != CodeValidationFailed || e["message"] != "bad input" || e["request_id"] != "rid-1" || e["details"] == nil {
		t.Fatalf("%d %s", res.StatusCode, b)
	}
}
