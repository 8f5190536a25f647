package legal

import (
	"testing"

	"github.com/spa-engine/spa/persistence"
)

// FuzzIPBlockValue: whatever an admin types, an accepted value is a
// canonical prefix the store accepts and that reads back as itself.
func FuzzIPBlockValue(f *testing.F) {
	for _, s := range []string{"203.0.113.7", "203.0.113.0/24", "10.0.0.1/8", "::ffff:10.0.0.0/104",
		"2001:db8::/32", "fe80::1%eth0", "::ffff:1.2.3.4", "0.0.0.0/0", "1.2.3.4/33", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, ok := ipBlockValue(s)
		if !ok {
			return
		}
		if p.Masked() != p || p.Addr().Is4In6() || p.Addr().Zone() != "" {
			t.Fatalf("%q → %v: not canonical", s, p)
		}
		if _, err := persistence.NormalizeBlock(persistence.Block{ID: "x", Kind: persistence.BlockIP, Value: p.String(), Reason: "r"}); err != nil {
			t.Fatalf("%q → %v refused by the store: %v", s, p, err)
		}
		if q, ok := ipBlockValue(p.String()); !ok || q != p {
			t.Fatalf("%q → %v → %v, %v", s, p, q, ok)
		}
	})
}
