package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// client is the HTTP side of the generator: keep-alive connections, one
// per worker at most, and a per-request timeout.
type client struct {
	base    string
	http    *http.Client
	timeout time.Duration
}

func newClient(o Options) *client {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        o.Workers + 16,
		MaxIdleConnsPerHost: o.Workers + 16,
		IdleConnTimeout:     90 * time.Second,
	}
	return &client{base: o.BaseURL, http: &http.Client{Transport: tr}, timeout: o.Timeout}
}

// response is what the generator keeps of an answer.
type response struct {
	status int    // 0 when there was no HTTP answer
	code   string // error.code of an error body
	err    error  // transport failure or timeout
	body   map[string]any
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
	return errors.As(err, &ne) && ne.Timeout()
}

// id is the appointment id of a 2xx body, "" otherwise.
func (r response) id() string {
	if r.status/100 != 2 {
		return ""
	}
	s, _ := r.body["id"].(string)
	return s
}

// do sends one request; body is JSON-encoded when not nil, key is the
// Idempotency-Key when not empty.
func (c *client) do(ctx context.Context, method, path, token string, body any, key string) response {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return response{err: err}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return response{err: err}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return response{err: err}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return response{err: err}
	}
	r := response{status: res.StatusCode}
	if len(b) > 0 && b[0] == '{' {
		_ = json.Unmarshal(b, &r.body)
	}
	if e, ok := r.body["error"].(map[string]any); ok {
		r.code, _ = e["code"].(string)
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
		return nil, fmt.Errorf("%s %s = %d %v, want %d", method, path, r.status, r.body, want)
	}
	return r.body, nil
}
