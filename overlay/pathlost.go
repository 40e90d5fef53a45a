package overlay

import (
	"net/netip"
	"time"

	"github.com/p2psock/p2psock/internal/wire"
)

// Lost paths (docs/PROTOCOL.md, §12.14). A NAT may give a node's socket a
// new public mapping while a QUIC connection runs over the old one (its
// state expired, or was flushed). QUIC follows a client that moved, but a
// client keeps sending to the address it dialled. The connection engine of
// the node that moved notices that its connection hears nothing and sends
// the peer a Ping with FlagPathLost along the connection's path (ProbePath):
// it arrives from the new mapping. The peer proves that address (a
// challenge there, answered with a signature) and then tells its engine
// (OnPathLost), which sends the connection's packets there.

const (
	maxPathLost = 64 // PathLost Pings awaiting their proof at once; more are dropped and counted
	// maxPathLostPerSubnet bounds those from one subnet: the IDs they name
	// prove nothing yet, so one subnet must not fill the table.
	maxPathLostPerSubnet = 4
	pathLostWait         = 10 * time.Second // how long one waits for its proof
)

// lostAsk is a PathLost Ping that awaits the proof of its source.
type lostAsk struct {
	addr netip.AddrPort
	at   time.Time
}

// OnPathLost makes the overlay call f when a node that sent a Ping with
// FlagPathLost has proved its key from the address that Ping came from:
// f(id, addr) says that id's QUIC connections with this node should reach
// it at addr now. f runs on the packet path and must not block; a later
// call replaces f, and nil stops the calls.
func (o *Overlay) OnPathLost(f func(id ID, addr netip.AddrPort)) {
	if f == nil {
		o.pathLostCB.Store(nil)
		return
	}
	o.pathLostCB.Store(&f)
}

// ProbePath sends id, at the direct address addr, a Ping with FlagPathLost
// that asks for a proof of its key. Nothing waits for the answer: through
// a NAT mapping that changed, the Ping shows id where this node is now.
func (o *Overlay) ProbePath(id ID, addr netip.AddrPort) {
	if o.isClosed() || id == o.self || !addr.IsValid() {
		return
	}
	o.pingFlags(id, path{addr: unmap(addr)}, true, wire.FlagPathLost) // expires with the unanswered pings (keepalive)
}

// onPathLost handles the FlagPathLost of a Ping from sender on the direct
// path p (answered and, if p is new, challenged by onPing already): a path
// proved already is news at once, another once its proof arrives.
func (o *Overlay) onPathLost(sender ID, p path) {
	o.mu.Lock()
	proved := false
	if c := o.tab.get(sender); c != nil && c.p == p {
		proved = true
	} else if vp, ok := o.paths[sender]; ok && vp.p == p && vp.at.since(time.Now()) < o.pathsTTL() {
		proved = true
	}
	if !proved {
		if _, ok := o.pathLost[sender]; !ok && (len(o.pathLost) >= maxPathLost || o.pathLostFromLocked(Subnet(p.addr.Addr())) >= maxPathLostPerSubnet) {
			o.mu.Unlock()
			o.ctr.pathLostDropped.Add(1)
			return
		}
		made(&o.pathLost)[sender] = lostAsk{addr: p.addr, at: time.Now()}
	}
	o.mu.Unlock()
	if proved {
		o.notePathLost(sender, p.addr)
	}
}

// takePathLost reports whether a PathLost Ping from id at addr awaited the
// proof just received, and forgets it.
func (o *Overlay) takePathLost(id ID, addr netip.AddrPort) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	a, ok := o.pathLost[id]
	if !ok || a.addr != addr {
		return false
	}
	delete(o.pathLost, id)
	return true
}

func (o *Overlay) notePathLost(id ID, addr netip.AddrPort) {
	o.ctr.pathLost.Add(1)
	if f := o.pathLostCB.Load(); f != nil {
		(*f)(id, addr)
	}
}

func (o *Overlay) prunePathLostLocked(now time.Time) {
	for id, a := range o.pathLost {
		if now.Sub(a.at) > pathLostWait {
			delete(o.pathLost, id)
		}
	}
}

// pathLostFromLocked counts the PathLost Pings awaiting their proof whose
// source is in subnet.
func (o *Overlay) pathLostFromLocked(subnet netip.Prefix) int {
	n := 0
	for _, a := range o.pathLost {
		if Subnet(a.addr.Addr()) == subnet {
			n++
		}
	}
	return n
}
