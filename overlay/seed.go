package overlay

import (
	"net/netip"
	"time"

	"github.com/p2psock/p2psock/internal/simhook"
)

func init() {
	simhook.Seed = func(ov any, observed netip.AddrPort, peers []simhook.Peer) {
		ov.(*Overlay).seed(observed, peers)
	}
}

// seed is simhook.Seed: a routing table filled from a global view, for the
// virtual network's tests only (it proves nothing).
func (o *Overlay) seed(observed netip.AddrPort, peers []simhook.Peer) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if observed.IsValid() {
		o.noteObservedLocked(observed)
		o.announce = false
	}
	now := time.Now()
	for _, p := range peers {
		if id := ID(p.ID); id != o.self {
			o.upsertLocked(id, path{addr: unmap(p.Addr)}, true, p.RTT)
		}
	}
	liveness := o.livenessIntervalLocked() // of the table as seeded
	for _, p := range peers {
		if c := o.tab.get(ID(p.ID)); c != nil {
			heard := stampOf(now.Add(-time.Duration(p.Heard * float64(liveness))))
			c.lastSeen, c.lastPing = heard, heard
		}
	}
	// the seeded buckets count as refreshed, as Join's refresh makes them
	o.refreshedLocked(o.tab.deepestNonEmpty(), now)
	o.joined = true
	o.answered = nil
}
