package overlay

import "net/netip"

// Subnet returns the network an address counts toward in the diversity
// limits: its IPv4 /24 or its IPv6 /48, so that one operator's block of
// addresses counts as one. A loopback, link-local or private (RFC 1918, ULA)
// address is its own subnet (a /32 or /128): a test network on
// 127.0.0.1, 127.0.0.2, … then behaves like nodes spread over the Internet,
// and hosts on one LAN are told apart. An IPv4-mapped IPv6 address counts as
// its IPv4 address. The zero Addr gives the zero Prefix.
func Subnet(a netip.Addr) netip.Prefix {
	if !a.IsValid() {
		return netip.Prefix{}
	}
	a = a.Unmap().WithZone("")
	bits := 48
	if a.Is4() {
		bits = 24
	}
	if observedScope(a) < scopeInternet { // loopback, private, link-local
		bits = a.BitLen()
	}
	p, _ := a.Prefix(bits)
	return p
}

// Diverse returns, in order, the first n of items (n < 0: all of them) such
// that no more than perSubnet of the chosen share a Subnet; the address of
// an item is addr(item). Items with an invalid address (a node reached
// through a relay, whose address this node does not know) are not limited.
// It is how a set picked by distance to a key — replicas, group roots,
// relays — is kept from being filled from one network: call it on the
// candidates sorted by distance.
func Diverse[T any](items []T, addr func(T) netip.Addr, perSubnet, n int) []T {
	out := make([]T, 0, min(max(n, 0), len(items)))
	if n < 0 {
		out = make([]T, 0, len(items))
	}
	q := subnetQuota{per: perSubnet}
	for _, it := range items {
		if n >= 0 && len(out) >= n {
			break
		}
		if q.take(Subnet(addr(it))) {
			out = append(out, it)
		}
	}
	return out
}

// subnetQuota counts the subnets of the items chosen for a set, at most per
// of one subnet (at least 1). It keeps them in a slice, looked through for
// each item: a set picked by distance holds tens of items, and a map made
// for each choice cost more than the look (a quarter of table.closest's
// time, which answers every Find).
type subnetQuota struct {
	per   int
	taken []netip.Prefix
}

// take reports whether an item of subnet s may join the set, and counts it
// if so. The zero Prefix (an item whose address is unknown) is not limited.
func (q *subnetQuota) take(s netip.Prefix) bool {
	if !s.IsValid() {
		return true
	}
	same := 0
	for _, x := range q.taken {
		if x == s {
			same++
		}
	}
	if same >= max(q.per, 1) {
		return false
	}
	q.taken = append(q.taken, s)
	return true
}

// DiverseFill is Diverse, then, if fewer than n items were chosen, the
// items left out, in order, until there are n: a set picked by distance
// takes one network's nodes beyond perSubnet only when the candidates span
// too few networks to fill it (a network on one machine, a small LAN),
// and then only after every network's first ones. It keeps the items'
// order among those chosen first, then appends the fill.
func DiverseFill[T comparable](items []T, addr func(T) netip.Addr, perSubnet, n int) []T {
	out := Diverse(items, addr, perSubnet, n)
	if n < 0 || len(out) >= n {
		return out
	}
	chosen := make(map[T]bool, len(out))
	for _, it := range out {
		chosen[it] = true
	}
	for _, it := range items {
		if len(out) >= n {
			break
		}
		if !chosen[it] {
			out = append(out, it)
		}
	}
	return out
}
