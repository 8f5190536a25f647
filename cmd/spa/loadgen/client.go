package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// client is the HTTP side of the generator: keep-alive connections, one
// per worker at most, and a per-request timeout. It is fasthttp's client,
// not net/http's: the generator shares the machine with the server it
// measures, and with net/http it spent nearly as much CPU per request as
// the server did.
type client struct {
	base    string
	http    *fasthttp.Client
	timeout time.Duration
}

func newClient(o Options) *client {
	return &client{base: o.BaseURL, timeout: o.Timeout, http: &fasthttp.Client{
		Name:                   "spa-loadgen",
		MaxConnsPerHost:        o.Workers + 16,
		MaxIdleConnDuration:    90 * time.Second,
		MaxConnWaitTimeout:     o.Timeout,
		DisablePathNormalizing: true,
	}}
}

// response is what the generator keeps of an answer.
type response struct {
	status int    // 0 when there was no HTTP answer
	code   string // error.code of an error body
	err    error  // transport failure or timeout
	apptID string // id of a 2xx body
	raw    []byte // the body, decoded on demand (see body)
}

// head is the part of a body every answer is classified by. Decoding into
// it skips the rest (alternatives, slots) without building maps, which
// keeps the generator's own CPU per request low: it shares the machine
// with the server it measures.
type head struct {
	ID    string `json:"id"`
	Error struct {
		Code string `json:"code"`
	} `json:"error"`
}

// body decodes the whole JSON object body (nil if there is none).
func (r response) body() map[string]any {
	var m map[string]any
	if len(r.raw) > 0 && r.raw[0] == '{' {
		_ = json.Unmarshal(r.raw, &m)
	}
	return m
}

// outcome names the response for the outcome counts: "201",
// "409 slot_taken", "timeout", "transport".
func (r response) outcome() string {
	switch {
	case r.err != nil && (errors.Is(r.err, context.DeadlineExceeded) || isTimeout(r.err)):
		return "timeout"
	case r.err != nil:
		return "transport"
	case r.code != "":
		return strconv.Itoa(r.status) + " " + r.code
	}
	return strconv.Itoa(r.status)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrDialTimeout) || (errors.As(err, &ne) && ne.Timeout())
}

// id is the appointment id of a 2xx body, "" otherwise.
func (r response) id() string {
	if r.status/100 != 2 {
		return ""
	}
	return r.apptID
}

// do sends one request; body is JSON-encoded when not nil, key is the
// Idempotency-Key when not empty. It gives up at the per-request timeout
// or ctx's deadline, whichever comes first.
func (c *client) do(ctx context.Context, method, path, token string, body any, key string) response {
	if err := ctx.Err(); err != nil {
		return response{err: err}
	}
	deadline := time.Now().Add(c.timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	req, res := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer func() { fasthttp.ReleaseRequest(req); fasthttp.ReleaseResponse(res) }()
	req.SetRequestURI(c.base + path)
	req.Header.SetMethod(method)
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return response{err: err}
		}
		req.SetBodyRaw(b)
		req.Header.SetContentType("application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	if err := c.http.DoDeadline(req, res, deadline); err != nil {
		return response{err: err}
	}
	b := res.Body()
	r := response{status: res.StatusCode(), raw: append([]byte(nil), b...)}
	if len(b) > 0 && b[0] == '{' {
		var h head
		_ = json.Unmarshal(b, &h)
		r.apptID, r.code = h.ID, h.Error.Code
	}
	return r
}

// must sends a request that has to answer want.
func (c *client) must(ctx context.Context, want int, method, path, token string, body any) (map[string]any, error) {
	r := c.do(ctx, method, path, token, body, "")
	if r.err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, r.err)
	}
	if r.status != want {
		return nil, fmt.Errorf("%s %s = %d %v, want %d", method, path, r.status, r.body(), want)
	}
	return r.body(), nil
}
