// Package fakefault lets the provider fakes (twiliofake, whatsappfake,
// recaptchafake) be told to fail: the next requests answer with a given
// status (429 with Retry-After, 500, ...) or hang until the client gives up.
package fakefault

import (
	"net/http"
	"sync"
)

// Fault is one injected failure.
type Fault struct {
	// Status is the HTTP status to answer (ignored when Hang is set).
	Status int
	// RetryAfter, if set, is sent as the Retry-After header.
	RetryAfter string
	// Body is the reply body (JSON); empty sends "{}".
	Body string
	// Hang blocks the request until the client disconnects (a timeout on
	// the client side) or the fake is closed.
	Hang bool
}

// Injector holds queued faults and an optional sticky one. The zero value
// is ready; it is safe for concurrent use.
type Injector struct {
	mu     sync.Mutex
	queue  []Fault
	always *Fault
	done   chan struct{}
	closed bool
}

// Next queues faults for the next requests, one each, in order.
func (in *Injector) Next(f ...Fault) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.queue = append(in.queue, f...)
}

// Always makes every request fail with f until Clear.
func (in *Injector) Always(f Fault) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.always = &f
}

// Clear drops queued and sticky faults.
func (in *Injector) Clear() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.queue, in.always = nil, nil
}

// Close releases hanging requests; call it before closing the server.
func (in *Injector) Close() {
	in.mu.Lock()
	defer in.mu.Unlock()
	if !in.closed {
		in.closed = true
		close(in.doneCh())
	}
}

func (in *Injector) doneCh() chan struct{} {
	if in.done == nil {
		in.done = make(chan struct{})
	}
	return in.done
}

// Apply answers r with the next fault, if any, and reports whether it did.
func (in *Injector) Apply(w http.ResponseWriter, r *http.Request) bool {
	in.mu.Lock()
	var f *Fault
	switch {
	case len(in.queue) > 0:
		f = &in.queue[0]
		in.queue = in.queue[1:]
	case in.always != nil:
		f = in.always
	}
	done := in.doneCh()
	in.mu.Unlock()
	if f == nil {
		return false
	}
	if f.Hang {
		select {
		case <-r.Context().Done():
		case <-done:
		}
		return true
	}
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(f.Status)
	body := f.Body
	if body == "" {
		body = "{}"
	}
	_, _ = w.Write([]byte(body))
	return true
}
