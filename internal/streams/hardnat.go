package streams

import (
	"context"
	"crypto/rand"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/p2psock/p2psock/internal/wire"
)

// Hard-NAT probing (docs/PROTOCOL.md, §12.13): a circuit between a node
// whose NAT maps per destination (the hard side: a symmetric NAT, a new
// random port for every address it sends to) and one whose mapping is
// endpoint-independent (the easy side) finds no direct path by the plain
// probes of circuitpath.go: the easy side's probes go to the port the hard
// side's NAT opened toward the relay, which admits only the relay, and the
// hard side's probes come from a port the easy side's NAT never sent to.
// So, birthday-paradox style, the hard side opens hardPorts extra sockets
// and sends one probe from each to the easy side's public address: its NAT
// opens hardPorts mappings that admit that address. The easy side sends
// up to hardSprayProbes probes to random ports of the hard side's public
// IP; one that lands on a mapping (with 256 of them among ~64 500 ports,
// 2048 probes land with probability ~99.97 %) reaches an extra socket,
// which answers, and the plain probe exchange of circuitpath.go runs over
// that path: the circuit's frames then leave the hard side through the
// extra socket that was reached, and the other extra sockets close at once.
//
// Both sides learn of each other from the Offer and Answer of the circuit
// (overlay service messages signed by their sender): the HardNAT flag, and
// the sender's address as its contacts see it. A node opens ports only
// toward the address its peer announced, sprays only the IP its peer
// announced, and only while the relay sees the peer at that same address
// (the opener) or IP (the sprayer): neither can be aimed at a third party
// by one liar. Everything is bounded: hardRounds rounds per connection, at
// most one round of each kind at a time per node, hardPorts sockets held
// hardHold at most, hardSprayProbes probes per round.

const (
	hardPorts       = 256                    // extra sockets the hard side opens in a round
	hardHold        = 5 * time.Second        // how long it keeps them, unless one carries the path
	hardSprayProbes = 2048                   // probes the easy side sends in a round
	hardSprayBatch  = 16                     // probes sent back to back
	hardSprayPace   = 8 * time.Millisecond   // between batches: 2048 probes in ~1 s
	hardSprayDelay  = 500 * time.Millisecond // the easy side starts this long after the round (the hard side's mappings first)
	hardRounds      = 3                      // rounds per connection
	hardRoundGap    = 20 * time.Second       // between rounds
	hardPortMin     = 1024                   // the lowest port a NAT maps to
)

// hardPort is one of the extra sockets of a hard-NAT round, on the
// engine's network (Config.Net, else the host's).
type hardPort struct{ pc net.PacketConn }

// listenHardPort opens an extra socket on network at ip (nil: any).
func (e *Engine) listenHardPort(network string, ip net.IP) (*hardPort, error) {
	laddr := &net.UDPAddr{IP: ip}
	if e.cfg.Net != nil {
		pc, err := e.cfg.Net.ListenUDP(network, laddr)
		if err != nil {
			return nil, err
		}
		return &hardPort{pc}, nil
	}
	pc, err := net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	return &hardPort{pc}, nil
}

// peerNAT is what a circuit's other end said of its NAT in its Offer or
// Answer.
type peerNAT struct {
	hard bool           // its NAT maps per destination
	addr netip.AddrPort // its address as its contacts see it, if it said
}

// peerNATOf reads m's description of its sender.
func peerNATOf(m wire.CircuitMsg) peerNAT {
	p := peerNAT{hard: m.Flags&wire.CircuitFlagHardNAT != 0}
	if m.Flags&wire.CircuitFlagAddr != 0 {
		p.addr = netip.AddrPortFrom(m.Addr.Addr().Unmap(), m.Addr.Port())
	}
	return p
}

// describeNAT fills in m's description of this node: the HardNAT flag,
// and the address its contacts see it at, if known.
func (e *Engine) describeNAT(m *wire.CircuitMsg) {
	if e.mappingDependent() {
		m.Flags |= wire.CircuitFlagHardNAT
	}
	if a := e.ov.Info().Observed; a.IsValid() {
		m.Flags |= wire.CircuitFlagAddr
		m.Addr = a
	}
}

// hardRole is what this node does in a round of hard-NAT probing with a
// peer.
type hardRole int

const (
	hardNone  hardRole = iota
	hardOpen           // this node's NAT is hard: open extra ports toward the peer
	hardSpray          // the peer's is: spray its IP's ports
)

// hardRoleFor decides this node's role with a peer that described itself
// as pn and that the relay sees at seen. selfHard says whether this node's
// NAT maps per destination.
func hardRoleFor(selfHard bool, pn peerNAT, seen netip.AddrPort) hardRole {
	if !pn.addr.IsValid() || !seen.IsValid() || selfHard == pn.hard {
		return hardNone
	}
	seen = netip.AddrPortFrom(seen.Addr().Unmap(), seen.Port())
	if selfHard {
		// The easy side's mapping is the same toward everyone: the relay
		// sees it where the peer says it is.
		if seen != pn.addr {
			return hardNone
		}
		return hardOpen
	}
	if seen.Addr() != pn.addr.Addr() {
		return hardNone
	}
	return hardSpray
}

// hardRound runs round n of hard-NAT probing for end's connection, whose
// end of life is done, in the given role toward to: it returns at once,
// leaving a goroutine of the engine's scope to do the work.
func (e *Engine) hardRound(end *circuitEnd, done <-chan struct{}, role hardRole, to netip.AddrPort) {
	switch role {
	case hardOpen:
		select {
		case e.hardOpening <- struct{}{}:
		default:
			return // another connection's round holds the ports
		}
		if !e.scope.Go(func(life context.Context) {
			defer func() { <-e.hardOpening }()
			e.openHardPorts(life, end, done, to)
		}) {
			<-e.hardOpening
		}
	case hardSpray:
		select {
		case e.hardSpraying <- struct{}{}:
		default:
			return
		}
		if !e.scope.Go(func(life context.Context) {
			defer func() { <-e.hardSpraying }()
			e.sprayHardPorts(life, end, done, to.Addr())
		}) {
			<-e.hardSpraying
		}
	}
}

// newSprayNonce gives end a fresh nonce for a round's probes, which its
// acknowledgements may carry as well as the latest plain probe's.
func newSprayNonce(end *circuitEnd) [8]byte {
	var n [8]byte
	rand.Read(n[:])
	end.probes.mu.Lock()
	end.probes.spray = n
	end.probes.mu.Unlock()
	return n
}

// probeFrame is a probe of circuit id with nonce n.
func probeFrame(id [8]byte, n [8]byte) []byte {
	var p [probeLen]byte
	p[0] = probeKind
	copy(p[1:], n[:])
	return wire.AppendCircuitFrame(nil, id, p[:])
}

// openHardPorts is the hard side's round: up to hardPorts extra sockets,
// each sending one probe to the easy side at to, held for hardHold; the
// one the easy side's probe reaches carries the connection from then on,
// until the connection ends. The others close as soon as one is reached.
func (e *Engine) openHardPorts(life context.Context, end *circuitEnd, done <-chan struct{}, to netip.AddrPort) {
	network, local := "udp4", net.IP(nil)
	if !to.Addr().Is4() {
		network = "udp6"
	}
	if la, ok := addrPort(e.sock.LocalAddr()); ok && !la.Addr().IsUnspecified() && la.Addr().Unmap().Is4() == to.Addr().Is4() {
		local = la.Addr().Unmap().AsSlice()
	}
	frame := probeFrame(end.conn.ID(), newSprayNonce(end))
	dst := net.UDPAddrFromAddrPort(to)
	var (
		wg     sync.WaitGroup
		wonNow = make(chan struct{})
		once   sync.Once
		socks  []*hardPort
	)
	for range hardPorts {
		s, err := e.listenHardPort(network, local)
		if err != nil {
			break // out of sockets: fewer ports this round
		}
		socks = append(socks, s)
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.readHardPort(end, s, func() { once.Do(func() { close(wonNow) }) })
		}()
		_, _ = s.pc.WriteTo(frame, dst) // best effort: a lost one is one port fewer
	}
	e.hardOpened.Add(uint64(len(socks)))
	e.cfg.Logger.Debug("hard NAT: extra ports open", "ports", len(socks), "to", to.String())
	t := time.NewTimer(hardHold)
	select {
	case <-wonNow:
	case <-t.C:
	case <-done:
	case <-life.Done():
	}
	t.Stop()
	// The port the circuit's frames leave from, if one of this round's:
	// onProbe does not move them to another port of the same peer.
	w := end.via.Load()
	if !slices.Contains(socks, w) {
		w = nil
	}
	for _, s := range socks {
		if s != w {
			s.pc.Close()
		}
	}
	if w != nil {
		e.cfg.Logger.Debug("hard NAT: an extra port carries the connection", "local", w.pc.LocalAddr().String())
		select {
		case <-done:
		case <-life.Done():
		}
		w.pc.Close()
	}
	wg.Wait()
}

// readHardPort reads an extra socket s of end's until it closes: probes
// and their answers go to onProbe, the circuit's frames from the direct
// path to its conn; reached runs when an answer to a probe makes s carry
// the circuit.
func (e *Engine) readHardPort(end *circuitEnd, s *hardPort, reached func()) {
	buf := make([]byte, 1500)
	for {
		n, addr, err := s.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		from, ok := addrPort(addr)
		if !ok {
			continue
		}
		id, payload, err := wire.ParseCircuitFrame(buf[:n])
		switch {
		case err != nil:
			e.drops.add(dropCircuitMalformed)
		case id != end.conn.ID():
			e.drops.add(dropCircuitUnknown)
		case isProbe(payload):
			e.onProbe(end, payload, from, s)
			if end.via.Load() == s {
				reached()
			}
		case !end.accepts(from):
			e.drops.add(dropCircuitStranger)
		case !end.conn.Deliver(payload):
			e.drops.add(dropCircuitQueue)
		}
	}
}

// sprayPorts returns n distinct random ports of [hardPortMin, 65535], in
// random order.
func sprayPorts(n int) []uint16 {
	const span = 65536 - hardPortMin
	n = min(n, span)
	seen := make(map[uint16]bool, n)
	out := make([]uint16, 0, n)
	for len(out) < n {
		p := uint16(hardPortMin + mrand.IntN(span))
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// sprayHardPorts is the easy side's round: after hardSprayDelay, probes
// from the node's socket to hardSprayProbes random ports of ip, paced, until
// a direct path is found or the connection ends.
func (e *Engine) sprayHardPorts(life context.Context, end *circuitEnd, done <-chan struct{}, ip netip.Addr) {
	wait := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-done:
		case <-life.Done():
		}
		return false
	}
	if !wait(hardSprayDelay) {
		return
	}
	frame := probeFrame(end.conn.ID(), newSprayNonce(end))
	ports := sprayPorts(hardSprayProbes)
	if e.sprayPorts != nil {
		ports = e.sprayPorts(hardSprayProbes)
	}
	sent := 0
	for sent < len(ports) && end.direct.Load() == nil {
		for _, p := range ports[sent:min(sent+hardSprayBatch, len(ports))] {
			_ = e.sock.WriteTo(frame, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, p))) // best effort
			sent++
		}
		if !wait(hardSprayPace) {
			break
		}
	}
	e.hardSprayed.Add(uint64(sent))
	e.cfg.Logger.Debug("hard NAT: sprayed", "ip", ip.String(), "probes", sent, "direct", end.direct.Load() != nil)
}
