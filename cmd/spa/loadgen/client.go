package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// client is the HTTP side of the generator: keep-alive connections, one
// per request in flight, and a per-request timeout. It is fasthttp's
// client, not net/http's: the generator shares the machine with the server
// it measures, and with net/http it spent nearly as much CPU per request
// as the server did. A client serves one run: once the run is cancelled
// (see abortWhenDone) its connections are closed and it dials no more.
type client struct {
	base    string
	bases   []string // every node's base URL (--url a,b,c); base is one of them
	http    *fasthttp.Client
	timeout time.Duration
	conns   *connSet
}

// seedParallelism is how many requests seeding sends at once.
const seedParallelism = 8

// spareConns is headroom over the requests in flight: a connection being
// closed still counts against fasthttp's limit for a moment.
const spareConns = 16

func newClient(o Options) *client {
	conns := &connSet{open: map[*trackedConn]struct{}{}}
	bases := strings.Split(o.BaseURL, ",")
	return &client{base: bases[0], bases: bases, timeout: o.Timeout, conns: conns, http: &fasthttp.Client{
		Name: "spa-loadgen",
		// At most max(workers, seeding) requests are in flight, each on
		// its own connection, so the pool never runs dry. Should it
		// anyway, fasthttp fails at once with ErrNoFreeConns (nothing
		// sent: see notSent) rather than waiting for a connection and
		// then reporting a timeout that looks like an unanswered claim.
		MaxConnsPerHost: max(o.Workers, seedParallelism) + spareConns,
		// One attempt per call: fasthttp otherwise resends even a POST
		// when the connection ends with io.EOF, and a claim that won the
		// first time would be recorded with the refusal of its resend.
		MaxIdemponentCallAttempts: 1,
		MaxConnWaitTimeout:        0,
		MaxIdleConnDuration:       90 * time.Second,
		DisablePathNormalizing:    true,
		Dial:                      conns.dial,
	}}
}

// node is the client as worker i uses it: on the i-th node, round robin
// over --url's list, with the same connections.
func (c *client) node(i int) *client {
	n := *c
	n.base = c.bases[i%len(c.bases)]
	return &n
}

// abortWhenDone closes the client's connections once ctx ends, so the
// requests in flight fail at once instead of at their timeout, and stops
// it dialing new ones. stop undoes it while ctx is still live.
func (c *client) abortWhenDone(ctx context.Context) (stop func() bool) {
	return context.AfterFunc(ctx, c.conns.closeAll)
}

// errAborted is a dial refused because the run was cancelled.
var errAborted = errors.New("loadgen: the run was cancelled")

// connSet tracks the client's open connections so a cancelled run can
// close them under fasthttp's feet.
type connSet struct {
	mu      sync.Mutex
	open    map[*trackedConn]struct{}
	aborted bool
}

func (s *connSet) dial(addr string) (net.Conn, error) {
	s.mu.Lock()
	aborted := s.aborted
	s.mu.Unlock()
	if aborted {
		return nil, errAborted
	}
	conn, err := fasthttp.Dial(addr)
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: conn, set: s}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.aborted { // cancelled while dialing
		_ = conn.Close()
		return nil, errAborted
	}
	s.open[tc] = struct{}{}
	return tc, nil
}

func (s *connSet) closeAll() {
	s.mu.Lock()
	s.aborted = true
	open := s.open
	s.open = map[*trackedConn]struct{}{}
	s.mu.Unlock()
	for tc := range open {
		_ = tc.Conn.Close()
	}
}

// trackedConn leaves its set when closed.
type trackedConn struct {
	net.Conn
	set *connSet
}

func (tc *trackedConn) Close() error {
	tc.set.mu.Lock()
	delete(tc.set.open, tc)
	tc.set.mu.Unlock()
	return tc.Conn.Close()
}

// response is what the generator keeps of an answer.
type response struct {
	status int    // 0 when there was no HTTP answer
	code   string // error.code of an error body
	err    error  // transport failure, timeout or cancellation
	// notSent: the request never left the generator (its run was over, or
	// no connection was free), so it cannot have had an effect.
	notSent bool
	apptID  string // id of a 2xx body
	raw     []byte // the body, decoded on demand (see body)
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

// Outcomes of requests without an HTTP answer.
const (
	outcomeNotSent   = "not sent"
	outcomeCancelled = "cancelled" // aborted in flight: may have reached the server
)

// outcome names the response for the outcome counts: "201",
// "409 slot_taken", "timeout", "transport", "cancelled", "not sent".
func (r response) outcome() string {
	switch {
	case r.notSent:
		return outcomeNotSent
	case r.err != nil && errors.Is(r.err, context.Canceled):
		return outcomeCancelled
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
// Idempotency-Key when not empty (see exchange for how it gives up).
func (c *client) do(ctx context.Context, method, path, token string, body any, key string) response {
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return response{err: err}
		}
	}
	return c.exchange(ctx, func(req *fasthttp.Request) {
		req.SetRequestURI(c.base + path)
		req.Header.SetMethod(method)
		if b != nil {
			req.SetBodyRaw(b)
			req.Header.SetContentType("application/json")
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
	})
}

// exchange sends the request prepare fills in and reads the answer. It
// gives up at the per-request timeout or ctx's deadline, whichever comes
// first, and at once when ctx is cancelled if ctx is the one
// abortWhenDone watches.
func (c *client) exchange(ctx context.Context, prepare func(*fasthttp.Request)) response {
	if err := ctx.Err(); err != nil {
		return response{err: err, notSent: true}
	}
	deadline := time.Now().Add(c.timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	req, res := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer func() { fasthttp.ReleaseRequest(req); fasthttp.ReleaseResponse(res) }()
	prepare(req)
	if err := c.http.DoDeadline(req, res, deadline); err != nil {
		switch {
		case errors.Is(err, fasthttp.ErrNoFreeConns):
			return response{err: err, notSent: true}
		case ctx.Err() != nil:
			// Cut off by the cancellation (closed connection, refused
			// redial), possibly after the server got it.
			return response{err: fmt.Errorf("%w (%w)", ctx.Err(), err)}
		}
		return response{err: err}
	}
	b := res.Body()
	r := response{status: res.StatusCode(), raw: append([]byte(nil), b...)}
	r.apptID, r.code = readHead(b)
	return r
}

// The two shapes nearly every answer has, as the gateway writes them: an
// error (apierr) and an appointment, each with its field first.
var (
	errorHead = []byte(`{"error":{"code":"`)
	idHead    = []byte(`{"id":"`)
)

// readHead is the appointment id or error code of a JSON answer. The
// generator shares the cores with the server, and decoding a whole 409
// (its alternatives) was a third of its CPU: the two usual shapes are
// read from their first field, anything else is decoded.
func readHead(b []byte) (id, code string) {
	if v, ok := leadingString(b, errorHead); ok {
		return "", v
	}
	if v, ok := leadingString(b, idHead); ok {
		return v, ""
	}
	if len(b) > 0 && b[0] == '{' {
		var h head
		_ = json.Unmarshal(b, &h)
		return h.ID, h.Error.Code
	}
	return "", ""
}

// leadingString is the string value that follows prefix in b, when it has
// no escapes (ids and codes never do).
func leadingString(b, prefix []byte) (string, bool) {
	if !bytes.HasPrefix(b, prefix) {
		return "", false
	}
	rest := b[len(prefix):]
	end := bytes.IndexByte(rest, '"')
	if end < 0 || bytes.IndexByte(rest[:end], '\\') >= 0 {
		return "", false
	}
	return string(rest[:end]), true
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
