package gateway

import (
	"net/netip"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// clientIP is the caller's address as the limiters, the IP blocklist and
// the session list see it.
//
// Fiber's c.IP() with a ProxyHeader returns the header as sent (or, with
// IP validation, its leftmost address): both are written by the client,
// who can put a fresh address there on every request and so walk past
// the per-IP limits and the IP blocklist. A proxy appends the address it
// saw to the right, so the only trustworthy entry is the rightmost one
// that no trusted proxy of ours wrote: walk the chain from the right,
// skipping trusted proxies.
func (s *server) clientIP(c *fiber.Ctx) string {
	peer := c.Context().RemoteIP().String()
	cfg := s.deps.Config
	if cfg.ProxyHeader == "" || !c.IsProxyTrusted() {
		return peer
	}
	var hops []string
	for _, v := range c.Request().Header.PeekAll(cfg.ProxyHeader) {
		hops = append(hops, strings.Split(string(v), ",")...)
	}
	return rightmostUntrusted(peer, hops, s.trustedProxies)
}

// rightmostUntrusted walks hops (the proxy header's entries, left to
// right) from the right and returns the first address not in trusted. An
// entry that is not an address ends the walk at the last address a
// trusted hop vouched for (peer when it is the rightmost one): what lies
// left of garbage cannot be trusted either.
func rightmostUntrusted(peer string, hops []string, trusted []netip.Prefix) string {
	last := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return last
		}
		a = a.Unmap()
		last = a.String()
		if !inPrefixes(a, trusted) {
			return last
		}
	}
	return last
}

// trustedPrefixes parses Config.TrustedProxies (addresses or CIDR ranges,
// as Fiber accepts them); entries that are neither are ignored, as Fiber
// ignores them.
func trustedPrefixes(list []string) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
		} else if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
		}
	}
	return out
}

func inPrefixes(a netip.Addr, list []netip.Prefix) bool {
	for _, p := range list {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
