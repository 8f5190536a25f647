package identity

import (
	"testing"

	"github.com/spa-engine/spa/actors/service/servicetest"
)

// The bot's identity: the same number (however written) is the same
// client, created once; a blocked number gets none.
func TestClientByPhone(t *testing.T) {
	f := newFixture(t)
	id, err := f.svc.ClientByPhone(t.Context(), "+573001234567")
	if err != nil || id == "" {
		t.Fatalf("first: %q %v", id, err)
	}
	again, err := f.svc.ClientByPhone(t.Context(), "+57 300 123 4567")
	if err != nil || again != id {
		t.Fatalf("again: %q %v, want %q", again, err, id)
	}
	other, err := f.svc.ClientByPhone(t.Context(), "+573009999999")
	if err != nil || other == id {
		t.Fatalf("another number: %q %v", other, err)
	}
	f.blocked.Store("+573005550000", true)
	if _, err := f.svc.ClientByPhone(t.Context(), "+573005550000"); servicetest.Code(err) != "blocked" {
		t.Fatalf("blocked number: %v", err)
	}
}
