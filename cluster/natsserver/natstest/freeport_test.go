package natstest

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"testing"
)

// A port FreePort hands out is outside the kernel's ephemeral range (an
// outgoing connection could take one inside it while a restarted server
// wants it back) and can be listened on.
func TestFreePortIsBelowTheEphemeralRange(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		t.Fatalf("read the ephemeral range: %v", err)
	}
	var lo, hi int
	if _, err := fmt.Sscan(string(b), &lo, &hi); err != nil {
		t.Fatalf("parse %q: %v", b, err)
	}
	for range 50 {
		p := FreePort(t)
		if p >= lo && p <= hi || p == 4222 {
			t.Fatalf("FreePort = %d, inside the ephemeral range %d-%d or the system NATS's port", p, lo, hi)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Fatalf("listen on FreePort's %d: %v", p, err)
		}
		ln.Close()
	}
}
