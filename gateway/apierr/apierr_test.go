package apierr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/gateway/reqctx"
	"github.com/spa-engine/spa/persistence"
)

func TestFrom(t *testing.T) {
	cases := []struct {
		err  error
		code string
		safe bool
	}{
		{fmt.Errorf("wrap: %w", persistence.ErrNotFound), fault.CodeNotFound, true},
		{fmt.Errorf("wrap: %w", persistence.ErrConflict), fault.CodeConflict, true},
		{fmt.Errorf("wrap: %w", persistence.ErrUnavailable), fault.CodeUnavailable, false},
		{fmt.Errorf("wrap: %w", persistence.ErrInvalid), fault.CodeValidationFailed, false},
		{fmt.Errorf("wrap: %w", persistence.ErrFenced), fault.CodeUnavailable, false},
		{context.DeadlineExceeded, fault.CodeTimeout, false},
		{fiber.ErrRequestEntityTooLarge, fault.CodePayloadTooLarge, true},
		{fiber.NewError(404, "Cannot GET /secret"), fault.CodeNotFound, true},
		{fiber.ErrMethodNotAllowed, fault.CodeMethodNotAllowed, true},
		{fiber.ErrTeapot, fault.CodeBadRequest, true},
		{fiber.ErrInternalServerError, fault.CodeInternal, true},
		{fmt.Errorf("handler: %w", fault.Forbidden("")), fault.CodeForbidden, true},
		{errors.New("sql: secret"), fault.CodeInternal, false},
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
	if !IsClientError(fault.Invalid("x")) || IsClientError(errors.New("x")) {
		t.Error("IsClientError")
	}
}

func TestWriteShape(t *testing.T) {
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/", func(c *fiber.Ctx) error {
		reqctx.SetRequestID(c, "rid-1")
		return Write(c, fault.Invalid("bad input", fault.FieldError{Field: "name", Message: "required"}))
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
	if res.StatusCode != 422 || e["code"] != fault.CodeValidationFailed || e["message"] != "bad input" || e["request_id"] != "rid-1" || e["details"] == nil {
		t.Fatalf("%d %s", res.StatusCode, b)
	}
}

// appended is a Details value that writes its own JSON.
type appended struct {
	S string `json:"s"`
}

func (a appended) AppendJSON(b []byte) []byte {
	return append(AppendJSONString(append(b, `{"s":`...), a.S), '}')
}

// TestWriteMatchesEncodingJSON: Write's hand-built body is byte for byte
// what c.JSON(body{…}) wrote before it, for plain and escaped strings and
// every kind of details, and it answers application/json.
func TestWriteMatchesEncodingJSON(t *testing.T) {
	var nilFields *fault.FieldError
	cases := []struct {
		err *Error
		rid string
	}{
		{fault.New(fault.CodeSlotTaken, ""), "01JDXQ7Z9V8K3M2N4P5R6S7T8V"},
		{fault.Invalid("bad input", fault.FieldError{Field: "name", Message: "required"}), "rid-1"},
		{fault.New(fault.CodeConflict, `quote " backslash \ <tag> & é `+"\n\t\u2028 \x7f"), `odd"<id>`},
		{fault.New(fault.CodeNotFound, "").WithDetails(map[string]any{"documents": []string{"terms", "privacy"}}), ""},
		{fault.New(fault.CodeConflict, "").WithDetails(nilFields), "r"}, // a typed nil is not omitted
		{fault.New(fault.CodeConflict, "").WithDetails([]int{}), "r"},
		{fault.New(fault.CodeConflict, "").WithDetails(appended{S: "a<b>"}), "r"},
	}
	for _, tc := range cases {
		want, err := json.Marshal(body{Error: bodyError{Code: tc.err.Code, Message: tc.err.Message, RequestID: tc.rid, Details: tc.err.Details}})
		if err != nil {
			t.Fatal(err)
		}
		app := fiber.New(fiber.Config{DisableStartupMessage: true})
		app.Get("/", func(c *fiber.Ctx) error {
			reqctx.SetRequestID(c, tc.rid)
			return Write(c, tc.err)
		})
		res, err := app.Test(httptest.NewRequest("GET", "/", nil), -1)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(res.Body)
		if string(got) != string(want) {
			t.Errorf("body\n got %s\nwant %s", got, want)
		}
		if res.StatusCode != tc.err.Status || res.Header.Get("Content-Type") != fiber.MIMEApplicationJSON {
			t.Errorf("%s: status %d, content type %q", tc.err.Code, res.StatusCode, res.Header.Get("Content-Type"))
		}
	}
}

// TestWriteRefusesUnencodableDetails: details encoding/json cannot write
// are an error, as c.JSON's was, not a truncated body.
func TestWriteRefusesUnencodableDetails(t *testing.T) {
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	var werr error
	app.Get("/", func(c *fiber.Ctx) error {
		werr = Write(c, fault.New(fault.CodeConflict, "").WithDetails(make(chan int)))
		return nil
	})
	if _, err := app.Test(httptest.NewRequest("GET", "/", nil), -1); err != nil {
		t.Fatal(err)
	}
	if werr == nil {
		t.Fatal("unencodable details were written")
	}
}

func TestFromUnwrapped(t *testing.T) {
	e := fault.Forbidden("")
	if got, safe := From(e); got != e || !safe {
		t.Fatalf("From(*Error) = %v, %v", got, safe)
	}
}

// TestRenderUnavailableSaysRetryAfter: every 503 tells the client when to
// retry, whether or not the error named a wait; a named wait wins.
func TestRenderUnavailableSaysRetryAfter(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{fmt.Errorf("postgres: %w: connection refused", persistence.ErrUnavailable), "2"},
		{fault.Unavailable("the calendar is busy recovering; retry"), "2"},
		{fault.Unavailable("").WithRetryAfter(5 * time.Second), "5"},
		{fault.Invalid("x"), ""},
	}
	for _, tc := range cases {
		app := fiber.New(fiber.Config{DisableStartupMessage: true})
		app.Get("/", func(c *fiber.Ctx) error { return Render(c, nil, tc.err) })
		res, err := app.Test(httptest.NewRequest("GET", "/", nil), -1)
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Header.Get("Retry-After"); got != tc.want {
			t.Errorf("Render(%v): status %d, Retry-After %q, want %q", tc.err, res.StatusCode, got, tc.want)
		}
	}
}
