package overlay

import (
	"net/netip"
	"time"
)

// SeedPeer is a node put into a routing table by Seed.
type SeedPeer struct {
	ID   ID
	Addr netip.AddrPort // where it is reached directly
	RTT  time.Duration  // its round-trip time, the contact's first estimate
	// Age is how long ago it was last heard from (so that a seeded
	// network's keepalives do not all fall due at once).
	Age time.Duration
}

// Seed fills the routing table with peers, each taken as if it had just
// answered a ping on Addr (public, directly reachable), and marks the node
// joined, as if Join had found the peers and observed this node at
// observed; that it is public is not announced to the peers (a seeded
// network's tables know every node as public already). It is for simulations that build a large network from a global
// view, the way PeerSim and similar simulators initialise, in place of
// joining node by node; the node's own code (keepalives, refreshes,
// routing) runs on the table from then on. Seed checks nothing: a peer's
// key is not proved and its address not probed, so it has no place on a
// real network. Peers the table refuses (a full bucket, the diversity
// limits) are left out, as Join leaves them.
func (o *Overlay) Seed(observed netip.AddrPort, peers []SeedPeer) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if observed.IsValid() {
		o.noteObservedLocked(observed)
		o.announce = false
	}
	now := time.Now()
	for _, p := range peers {
		if p.ID == o.self {
			continue
		}
		o.upsertLocked(p.ID, path{addr: unmap(p.Addr)}, true, p.RTT)
		if c := o.tab.get(p.ID); c != nil {
			c.lastSeen, c.lastPing = now.Add(-p.Age), now.Add(-p.Age)
		}
	}
	o.joined = true
	o.answered = nil
}
