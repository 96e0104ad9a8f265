package ratelimit

import "net/netip"

// IPKey is the key of a client address for the per-IP rules: the address
// itself for IPv4, and its /64 for IPv6, because a subscriber is usually
// given a whole /64 and could otherwise send each request from a new one
// of its 2^64 addresses. IPv4-mapped IPv6 addresses count as IPv4. A string
// that is not an address (gin's ClientIP is "" without a peer) is returned
// as it is: those requests share one budget, which limits them rather than
// letting them through.
func IPKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, err := a.WithZone("").Prefix(64)
	if err != nil {
		return ip
	}
	return p.String()
}
