package overlay

import (
	"net/netip"
	"time"

	"github.com/p2psock/p2psock/internal/wire"
)

// Which observed address counts. A node hears its own address from every
// contact that Pongs it directly, and contacts in different places see it at
// different addresses: a node behind a NAT is seen at the NAT's address by
// nodes on the Internet, and at its own LAN or loopback address by nodes on
// its LAN or machine (other p2pcats found by local discovery). Only the
// first says how the network at large reaches it. If the last Pong won, a
// LAN neighbour's Pong would make it believe it is public at its LAN
// address: it would say so in its Pings and Pongs, so that nodes far away
// would try to reach it straight at its NAT's address and give up on it,
// and it would stop the keepalives that hold its NAT's mapping open.
//
// So an observation ranks by the scope of the address seen: loopback below
// private and link-local addresses below the rest. One of a narrower scope
// than the last taken in its address family is ignored while that one is
// fresh (observedWiderTTL); a network of LAN nodes only still sees itself
// through them.

// observedScope ranks the address a contact saw this node at by how far it
// reaches: 0 this machine (loopback), 1 a LAN (private, unique local or
// link-local), 2 the rest.
func observedScope(a netip.Addr) int8 {
	switch {
	case a.IsLoopback():
		return 0
	case a.IsPrivate(), a.IsLinkLocalUnicast():
		return 1
	}
	return scopeInternet
}

// scopeInternet is the widest scope (observedScope): an address the
// Internet routes.
const scopeInternet = 2

// observedWiderTTL is how long an observed address keeps out those of a
// narrower scope since it was last seen: four keepalive intervals (a node
// behind a NAT pings its contacts on the Internet every KeepAlive, and
// each Pong renews it), one minute at least.
func (o *Overlay) observedWiderTTL() time.Duration {
	return max(time.Minute, 4*o.cfg.KeepAlive)
}

// takeObservedLocked reports whether the observed address a (unmapped)
// counts: its scope is not narrower than that of the last one taken in its
// family, or that one is stale. If it counts, it becomes the family's last.
func (o *Overlay) takeObservedLocked(a netip.AddrPort, now time.Time) bool {
	f := b2i(a.Addr().Is6())
	s := observedScope(a.Addr())
	if s < o.observedScope[f] && now.Sub(o.observedAt[f]) < o.observedWiderTTL() {
		return false
	}
	o.observedScope[f], o.observedAt[f] = s, now
	return true
}

// The same scopes apply to the addresses a Nodes answer names. A node that
// this node reaches over the Internet names the contacts it has on its own
// LAN or machine at their LAN or loopback addresses, which lead elsewhere
// from here (to this node's own machine, for a loopback address). Linking
// to one at such an address fails, and a lookup that learned a node so
// first does not try its right address, which another node names: a light
// client could then not attach to the full node closest to its ID, where
// the messages to it end, and a reply to it would be refused. So such an
// address is left out of the answer (usableNamed); the node named still
// counts as named, for a lookup over disjoint paths, but is linked to only
// at an address another answer gives.

// pathScopeLocked is the scope of the path p an answer came over: its
// address's, or for a relayed path that of the relay's direct path (a node
// reached only through another is no nearer than that one); 0, the
// narrowest, when this node knows no direct path to the relay any more, so
// that nothing is cleared on a guess.
func (o *Overlay) pathScopeLocked(p path) int8 {
	if !p.relayed() {
		return observedScope(p.addr.Addr())
	}
	if rp, _, ok := o.knownPathLocked(p.relay()); ok && !rp.relayed() {
		return observedScope(rp.addr.Addr())
	}
	return 0
}

// unnameNarrowLocked clears, in the contacts a Nodes answer that came over
// p names, the addresses of a narrower scope than p: they are no use to
// this node. A contact left without an address is not linked to through
// this answer (usableNamed).
func (o *Overlay) unnameNarrowLocked(p path, nodes []wire.Contact) {
	s := o.pathScopeLocked(p)
	for i, n := range nodes {
		if observedScope(unmap(n.Addr).Addr()) < s {
			nodes[i].Addr = netip.AddrPort{}
		}
	}
}

// usableNamed reports whether a contact named in an answer has an address
// this node may link to it at (unnameNarrowLocked).
func usableNamed(n wire.Contact) bool { return n.Addr.IsValid() }
