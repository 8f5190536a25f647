package resilient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// maxBody caps how much of a provider reply is read: replies are small JSON.
const maxBody = 1 << 20

// Reply is a provider's HTTP answer with its body already read.
type Reply struct {
	Status int
	Header http.Header
	Body   []byte
}

// HTTP performs one request built by build (called once per attempt, so the
// body is fresh) and returns the reply. Network errors, timeouts, 408, 429
// and 5xx become transient errors carrying Retry-After; any other status is
// returned as a Reply for the client to map.
func HTTP(ctx context.Context, client *http.Client, build func(ctx context.Context) (*http.Request, error)) (Reply, error) {
	req, err := build(ctx)
	if err != nil {
		return Reply{}, err
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			return Reply{}, err
		}
		return Reply{}, Transient(fmt.Errorf("%s %s: %w", req.Method, req.URL.Host, err), 0)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return Reply{}, Transient(fmt.Errorf("%s %s: reading reply: %w", req.Method, req.URL.Host, err), 0)
	}
	r := Reply{Status: resp.StatusCode, Header: resp.Header, Body: body}
	if Retryable(resp.StatusCode) {
		return r, Transient(&StatusError{Status: resp.StatusCode}, RetryAfter(resp.Header, time.Now()))
	}
	return r, nil
}

// StatusError is a reply status that means "try later".
type StatusError struct{ Status int }

func (e *StatusError) Error() string { return "provider replied HTTP " + strconv.Itoa(e.Status) }

// Retryable reports whether an HTTP status is worth retrying.
func Retryable(status int) bool {
	return status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500
}

// RetryAfter parses a Retry-After header (seconds or an HTTP date); zero when
// absent or unparsable.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
