package streams

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/nat"
	"github.com/p2psock/p2psock/overlay"
)

// Circuits: a public node relays the QUIC packets of two peers that cannot
// reach each other directly, on its one socket (docs/PROTOCOL.md, §12.12).
// Each end joins the circuit at the relay with a circuit message (service
// 5) naming the other end; the relay keeps a circuit only for ends it has a
// direct link with, and forwards Circuit frames between the two addresses
// of those links once both have joined. This file holds both roles: the
// relay's circuits, and this node's own circuit ends.

const (
	circuitPendingTTL  = 15 * time.Second // a circuit one end joined waits this long for the other
	circuitIdleTTL     = 45 * time.Second // a circuit without frames for this long is dropped (QUIC keepalives come every 10 s)
	maxCircuitsPerPeer = 8                // circuits one node may be an end of at a relay; past it, its oldest goes
)

// relayCircuit is a circuit this node relays: a joined b's circuit first;
// bAddr is valid once b joined too.
type relayCircuit struct {
	id           [8]byte
	a, b         overlay.ID
	aAddr, bAddr netip.AddrPort
	created      time.Time
	last         time.Time // the last frame forwarded (or the last join)
}

func (c *relayCircuit) active() bool { return c.bAddr.IsValid() }

// circuitEnd is a circuit this node is an end of.
type circuitEnd struct {
	conn    *nat.CircuitConn
	relay   netip.AddrPort
	relayID overlay.ID
	// direct is the peer's address on a direct path, once found; frames
	// from it are taken as well.
	direct atomic.Pointer[netip.AddrPort]
	// via is the extra socket of this node's that the direct path leaves
	// from (hardnat.go); nil: the node's socket.
	via    atomic.Pointer[hardPort]
	probes probeState // the search for a direct path (circuitpath.go)
}

// circuits is the engine's circuit table, apart from Engine.mu: its frame
// handler runs for every relayed packet.
type circuits struct {
	mu      sync.Mutex
	relayed map[[8]byte]*relayCircuit
	ends    map[[8]byte]*circuitEnd
	bucket  tokenBucket

	relayedBytes atomic.Uint64
}

// tokenBucket meters relayed bytes: rate per second, up to a second's worth
// saved up.
type tokenBucket struct {
	rate   float64
	tokens float64
	at     time.Time
}

func (b *tokenBucket) take(n int, now time.Time) bool {
	b.tokens += now.Sub(b.at).Seconds() * b.rate
	b.at = now
	if b.tokens > b.rate {
		b.tokens = b.rate
	}
	if b.tokens < float64(n) {
		return false
	}
	b.tokens -= float64(n)
	return true
}

func newCircuits(rate int) *circuits {
	return &circuits{relayed: make(map[[8]byte]*relayCircuit), ends: make(map[[8]byte]*circuitEnd),
		bucket: tokenBucket{rate: float64(rate), tokens: float64(rate), at: time.Now()}}
}

// handleCircuitFrame takes a Circuit frame off the socket's dispatcher
// (a socket without the inline path: circuitInline): as circuitInline, and
// it sends on what is to be forwarded, and answers probes.
func (e *Engine) handleCircuitFrame(pkt []byte, from net.Addr) {
	src, _ := addrPort(from)
	verdict, to := e.circuitFrame(pkt, src, true)
	if verdict == nat.Forward {
		_ = e.sock.WriteTo(pkt, net.UDPAddrFromAddrPort(to)) // lost like any datagram: QUIC sends again
	}
}

// circuitInline takes a Circuit frame on the socket's reading goroutine
// (nat.InlineHandler): the payload of a circuit this node is an end of
// goes to its conn, one it relays is forwarded to the other end by the
// socket at once; probes, which may be answered, go to the dispatcher
// (handleCircuitFrame). Everything else is dropped and counted.
func (e *Engine) circuitInline(pkt []byte, src netip.AddrPort) (nat.InlineVerdict, netip.AddrPort) {
	return e.circuitFrame(pkt, src, false)
}

// circuitFrame decides what becomes of a Circuit frame from src: delivered
// to one of this node's circuit ends (nat.Consumed), forwarded to the
// other end of a circuit this node relays (nat.Forward, to its address),
// or dropped and counted (nat.Consumed). A probe is handled at once if
// probes is true, else left to the dispatcher (nat.Queue). Per frame it
// costs one map lookup by circuit ID under the table's lock, and a
// comparison of src with the ends' addresses.
func (e *Engine) circuitFrame(pkt []byte, src netip.AddrPort, probes bool) (nat.InlineVerdict, netip.AddrPort) {
	id, payload, err := wire.ParseCircuitFrame(pkt)
	if err != nil {
		e.drops.add(dropCircuitMalformed)
		return nat.Consumed, netip.AddrPort{}
	}
	c := e.circ
	c.mu.Lock()
	if end := c.ends[id]; end != nil {
		c.mu.Unlock()
		if isProbe(payload) {
			if !probes {
				return nat.Queue, netip.AddrPort{}
			}
			e.onProbe(end, payload, src, nil)
			return nat.Consumed, netip.AddrPort{}
		}
		if !end.accepts(src) {
			e.drops.add(dropCircuitStranger)
			return nat.Consumed, netip.AddrPort{}
		}
		if !end.conn.Deliver(payload) {
			e.drops.add(dropCircuitQueue)
		}
		return nat.Consumed, netip.AddrPort{}
	}
	rc := c.relayed[id]
	var to netip.AddrPort
	reason := dropReason(-1)
	now := time.Now()
	switch {
	case rc == nil:
		reason = dropCircuitUnknown
	case !rc.active():
		reason = dropCircuitUnknown
	case src == rc.aAddr:
		to = rc.bAddr
	case src == rc.bAddr:
		to = rc.aAddr
	default:
		reason = dropCircuitStranger
	}
	if reason < 0 && !c.bucket.take(len(pkt), now) {
		reason = dropCircuitBudget
	}
	if reason >= 0 {
		c.mu.Unlock()
		e.drops.add(reason)
		return nat.Consumed, netip.AddrPort{}
	}
	rc.last = now
	c.mu.Unlock()
	c.relayedBytes.Add(uint64(len(pkt)))
	return nat.Forward, to
}

// handleCircuit is the circuit service's handler (service 5): Offers from
// peers that want a circuit with this node, Joins from ends of circuits
// this node relays. It runs on the packet path: it records state and
// starts goroutines, and never waits.
func (e *Engine) handleCircuit(m overlay.Message) ([]byte, bool) {
	msg, err := wire.ParseCircuitMsg(m.Data)
	if err != nil {
		e.badSignals.Add(1)
		return nil, true
	}
	switch msg.Kind {
	case wire.CircuitOffer:
		return e.onCircuitOffer(m.From, msg), true
	case wire.CircuitJoin:
		return e.onCircuitJoin(m.From, msg), true
	}
	e.badSignals.Add(1)
	return nil, true
}

// circuitReply encodes a reply of kind (and reason) for circuit id.
func circuitReply(id [8]byte, kind, reason byte) []byte {
	b, _ := wire.AppendCircuitMsg(nil, wire.CircuitMsg{Kind: kind, Reason: reason, Circuit: id})
	return b
}

// relays reports whether this node relays circuits for others: relaying is
// on and the network sees the node at its own socket address.
func (e *Engine) relays() bool {
	return !e.cfg.NoRelaying && e.ov.Info().Public
}

// Relaying reports whether the node relays connections for others now:
// relaying is on (Config.NoRelaying) and the network sees the node at its
// own socket address.
func (e *Engine) Relaying() bool { return e.relays() }

// onCircuitJoin admits from as an end of circuit msg.Circuit, whose other
// end is msg.Peer: only a node this one has a direct link with, whose
// frames will come from that link's address; within the budget of
// circuits.
func (e *Engine) onCircuitJoin(from overlay.ID, msg wire.CircuitMsg) []byte {
	id := msg.Circuit
	if !e.relays() {
		e.drops.add(dropCircuitNoRelay)
		return circuitReply(id, wire.CircuitRefuse, wire.CircuitNoRelay)
	}
	if e.isClosing() {
		return circuitReply(id, wire.CircuitRefuse, wire.CircuitClosing)
	}
	p, ok := e.ov.PeerInfo(from)
	if !ok || !p.Addr.IsValid() {
		e.drops.add(dropCircuitNoLink)
		return circuitReply(id, wire.CircuitRefuse, wire.CircuitNoLink)
	}
	peer := overlay.ID(msg.Peer)
	if peer == from || peer == e.self || peer == (overlay.ID{}) {
		e.badSignals.Add(1)
		return circuitReply(id, wire.CircuitRefuse, wire.CircuitBusy)
	}
	addr := netip.AddrPortFrom(p.Addr.Addr().Unmap(), p.Addr.Port())
	kind, reason, other := e.circ.join(id, from, addr, peer, e.cfg.MaxRelayedConns, &e.drops)
	if kind != wire.CircuitActive {
		return circuitReply(id, kind, reason)
	}
	// An Active reply tells the end where the relay sees the other end,
	// for the ends' direct probes (circuitpath.go).
	b, _ := wire.AppendCircuitMsg(nil, wire.CircuitMsg{Kind: kind, Circuit: id,
		Relays: []wire.CircuitRelay{{ID: peer, Addr: other}}})
	return b
}

// join records from (at addr) as an end of circuit id with peer, and
// returns the reply: Active if both ends have joined, Pending if only from
// has, or a refusal.
func (c *circuits) join(id [8]byte, from overlay.ID, addr netip.AddrPort, peer overlay.ID, max int, d *drops) (kind, reason byte, other netip.AddrPort) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweepLocked(now)
	if rc := c.relayed[id]; rc != nil {
		switch {
		case rc.a == from && rc.b == peer:
			rc.aAddr, rc.last, other = addr, now, rc.bAddr
		case rc.b == from && rc.a == peer:
			rc.bAddr, rc.last, other = addr, now, rc.aAddr
		default:
			d.add(dropCircuitBusy)
			return wire.CircuitRefuse, wire.CircuitBusy, other
		}
		if rc.active() {
			return wire.CircuitActive, 0, other
		}
		return wire.CircuitPending, 0, netip.AddrPort{}
	}
	// A node that is an end of too many circuits loses its oldest: it
	// only ever displaces its own.
	var n int
	var oldest *relayCircuit
	for _, rc := range c.relayed {
		if rc.a == from || rc.b == from {
			n++
			if oldest == nil || rc.created.Before(oldest.created) {
				oldest = rc
			}
		}
	}
	if n >= maxCircuitsPerPeer {
		delete(c.relayed, oldest.id)
		d.add(dropCircuitEvicted)
	} else if len(c.relayed) >= max {
		d.add(dropCircuitFull)
		return wire.CircuitRefuse, wire.CircuitFull, other
	}
	c.relayed[id] = &relayCircuit{id: id, a: from, aAddr: addr, b: peer, created: now, last: now}
	return wire.CircuitPending, 0, other
}

// sweepLocked drops the circuits whose second end never joined, and those
// no frame crossed for circuitIdleTTL.
func (c *circuits) sweepLocked(now time.Time) {
	for id, rc := range c.relayed {
		if (!rc.active() && now.Sub(rc.created) > circuitPendingTTL) || now.Sub(rc.last) > circuitIdleTTL {
			delete(c.relayed, id)
		}
	}
}

// active returns the number of circuits this node relays with both ends
// joined.
func (c *circuits) active() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, rc := range c.relayed {
		if rc.active() {
			n++
		}
	}
	return n
}

// newEnd registers a circuit end of this node, whose frames come from (and
// go to) the relay relayID at relay; closing its conn removes it.
func (e *Engine) newEnd(id [8]byte, relayID overlay.ID, relay netip.AddrPort) *circuitEnd {
	c := e.circ
	end := &circuitEnd{relay: relay, relayID: relayID}
	end.conn = nat.NewCircuitConn(e.sock, id, net.UDPAddrFromAddrPort(relay), func() {
		c.mu.Lock()
		if c.ends[id] == end {
			delete(c.ends, id)
		}
		c.mu.Unlock()
	})
	c.mu.Lock()
	c.ends[id] = end
	c.mu.Unlock()
	return end
}

// relayedCount returns the number of circuits this node relays, pending
// ones included.
func (c *circuits) relayedCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.relayed)
}

// moveEnd records that the node id, an end of circuits this node relays, is
// at addr now (it proved it: Engine.onPathLost).
func (c *circuits) moveEnd(id overlay.ID, addr netip.AddrPort) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rc := range c.relayed {
		switch id {
		case rc.a:
			rc.aAddr = addr
		case rc.b:
			rc.bAddr = addr
		}
	}
}
