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
	if perSubnet <= 0 {
		perSubnet = 1
	}
	out := make([]T, 0, min(max(n, 0), len(items)))
	if n < 0 {
		out = make([]T, 0, len(items))
	}
	count := map[netip.Prefix]int{}
	for _, it := range items {
		if n >= 0 && len(out) >= n {
			break
		}
		if a := addr(it); a.IsValid() {
			s := Subnet(a)
			if count[s] >= perSubnet {
				continue
			}
			count[s]++
		}
		out = append(out, it)
	}
	return out
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
