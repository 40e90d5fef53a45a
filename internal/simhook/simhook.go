// Package simhook holds what the virtual network's tests (internal/sim) may
// do to an overlay and no application may: fill its routing table from a
// global view, without proof. Package overlay sets the hook; nothing outside
// this module can import it.
package simhook

import (
	"net/netip"
	"time"
)

// Peer is a node put into a routing table by Seed.
type Peer struct {
	ID   [32]byte
	Addr netip.AddrPort // where it is reached directly
	RTT  time.Duration  // its round-trip time, the contact's first estimate
	// Heard is how long ago it was last heard from, as a fraction (0 to 1)
	// of the node's liveness interval (how long a public contact may be
	// silent before it is checked, which the table's size sets): seeded
	// moments spread over it make the checks run at their steady rate from
	// the first moment, as in a network that has run for a while.
	Heard float64
}

// Seed fills the routing table of ov (an *overlay.Overlay) with peers, each
// taken as if it had just answered a ping on Addr (public, directly
// reachable), and marks the node joined, as if Join had found the peers and
// observed this node at observed; that it is public is not announced to the
// peers (a seeded network's tables know every node as public already). It is
// for simulations that build a large network from a global view, the way
// PeerSim and similar simulators initialise, in place of joining node by
// node; the node's own code (keepalives, refreshes, routing) runs on the
// table from then on. Seed checks nothing: a peer's key is not proved and
// its address not probed, which is why it is not part of overlay's API.
// Peers the table refuses (a full bucket, the diversity limits) are left
// out, as Join leaves them.
var Seed func(ov any, observed netip.AddrPort, peers []Peer)
