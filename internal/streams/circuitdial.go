package streams

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/overlay"
)

// Connecting through a circuit (docs/PROTOCOL.md, §12.12): the connecting
// end offers the peer up to wire.MaxCircuitRelays public contacts, one per
// subnet, fastest first; the peer answers with the one it reaches fastest,
// and both join the circuit there. QUIC then runs over the circuit, on a
// transport of each end's own (nat.CircuitConn), as over a TURN relay.

const (
	circuitJoinEvery = 200 * time.Millisecond // the connecting end asks the relay this often until the peer has joined
	circuitJoinWait  = 5 * time.Second        // and gives up after this long
	circuitContacts  = 32                     // direct contacts the relays are chosen from
)

// circuitQUICConfig is the engine's QUIC configuration for a connection
// over a circuit: its packets travel in Circuit frames, 9 bytes longer.
// They start at QUIC's initial size (1252 bytes) and grow by path MTU
// discovery, as on a direct path, up to wire.MaxCircuitPayload
// (nat.CircuitConn.QUICConn), where the socket lets quic-go set DF on
// Linux; elsewhere quic-go would take a datagram refused for its size for
// a fatal error, and they keep to 1252 bytes.
func (e *Engine) circuitQUICConfig() *quic.Config {
	c := e.quicConfig()
	c.DisablePathMTUDiscovery = runtime.GOOS != "linux"
	return c
}

// circuitRelays returns the relays this node offers for a circuit with
// remote: public direct contacts other than remote, one per subnet, fastest
// first. A contact learns that it is public from its first contact's
// answer, and tells the others with its next one: while no contact has
// said it is public, the direct contacts are offered as they are (one
// that is not public refuses to relay).
func (e *Engine) circuitRelays(remote overlay.ID) []wire.CircuitRelay {
	var pub, other []overlay.DirectContact
	for _, c := range e.ov.DirectContacts(circuitContacts) {
		switch {
		case c.ID == remote || !c.Addr.IsValid():
		case c.Public:
			pub = append(pub, c)
		default:
			other = append(other, c)
		}
	}
	if len(pub) == 0 {
		pub = other
	}
	slices.SortStableFunc(pub, func(a, b overlay.DirectContact) int { return rttOrder(a.RTT, b.RTT) })
	pub = overlay.Diverse(pub, func(c overlay.DirectContact) netip.Addr { return c.Addr.Addr() }, 1, wire.MaxCircuitRelays)
	out := make([]wire.CircuitRelay, len(pub))
	for i, c := range pub {
		out[i] = wire.CircuitRelay{ID: c.ID, Addr: c.Addr}
	}
	return out
}

// rttOrder orders round-trip times, unmeasured (0) ones last.
func rttOrder(a, b time.Duration) int {
	switch {
	case a == b:
		return 0
	case a == 0:
		return 1
	case b == 0:
		return -1
	case a < b:
		return -1
	}
	return 1
}

// circuitAttempt connects to remote through a circuit on a public node.
func (e *Engine) circuitAttempt(ctx context.Context, remote overlay.ID) (*peerConn, error) {
	relays := e.circuitRelays(remote)
	if len(relays) == 0 {
		return nil, ErrNoPath
	}
	s := newSession(e.scope.Context(), remote, true)
	if err := e.addSession(s); err != nil {
		return nil, err
	}
	defer e.dropSession(s)
	offer := wire.CircuitMsg{Kind: wire.CircuitOffer, Circuit: s.id, Relays: relays}
	e.describeNAT(&offer)
	b, err := wire.AppendCircuitMsg(nil, offer)
	if err != nil {
		return nil, err
	}
	reply, _, err := e.ov.SendService(ctx, wire.ServiceCircuit, b, remote.Key(), false)
	if err != nil {
		return nil, err
	}
	ans, err := wire.ParseCircuitMsg(reply)
	if err != nil {
		e.badSignals.Add(1)
		return nil, fmt.Errorf("p2psock: bad circuit answer from peer: %w", err)
	}
	switch ans.Kind {
	case wire.CircuitAnswer:
	case wire.CircuitRefuse:
		switch ans.Reason {
		case wire.CircuitConflict:
			return nil, errYield
		case wire.CircuitNoChoice:
			return nil, ErrNoPath
		}
		return nil, ErrRefused
	default:
		return nil, fmt.Errorf("p2psock: unexpected circuit message %d from peer", ans.Kind)
	}
	i := slices.IndexFunc(relays, func(r wire.CircuitRelay) bool { return r.ID == ans.Peer })
	if i < 0 {
		e.badSignals.Add(1)
		return nil, fmt.Errorf("p2psock: the peer chose a relay not offered")
	}
	relay := relays[i]
	end := e.newEnd(s.id, relay.ID, relay.Addr)
	cc := end.conn
	peerAddr, err := e.joinCircuit(ctx, end, relay.ID, remote, true)
	if err != nil {
		cc.Close()
		return nil, err
	}
	tr := &quic.Transport{Conn: cc.QUICConn()}
	qc, err := tr.Dial(ctx, cc.Relay(), clientTLS(e.cert, remote), e.circuitQUICConfig())
	if err != nil {
		tr.Close()
		cc.Close()
		return nil, handshakeErr(ctx, err)
	}
	pc := &peerConn{id: remote, qc: qc, relayed: true, tr: tr, circ: end}
	e.watchPath(pc, end, relay.ID, remote, peerAddr, peerNATOf(ans))
	return pc, nil
}

// watchPath starts the search for a direct path of pc (circuitpath.go),
// unless the node uses relays only; pn is what the peer said of its NAT.
func (e *Engine) watchPath(pc *peerConn, end *circuitEnd, relay, peer overlay.ID, peerAddr netip.AddrPort, pn peerNAT) {
	if e.cfg.ForceRelay {
		return
	}
	e.scope.Go(func(life context.Context) { e.upgradePath(life, pc, end, relay, peer, peerAddr, pn) })
}

// joinCircuit joins cc's circuit with peer at the relay. The connecting
// end (untilActive) asks again until the peer has joined too, so that its
// first QUIC packets are not dropped for an inactive circuit.
// It returns where the relay sees the peer, once the peer has joined.
func (e *Engine) joinCircuit(ctx context.Context, end *circuitEnd, relay, peer overlay.ID, untilActive bool) (netip.AddrPort, error) {
	b, _ := wire.AppendCircuitMsg(nil, wire.CircuitMsg{Kind: wire.CircuitJoin, Circuit: end.conn.ID(), Peer: peer})
	ctx, cancel := context.WithTimeout(ctx, circuitJoinWait)
	defer cancel()
	for {
		reply, _, err := e.ov.SendService(ctx, wire.ServiceCircuit, b, relay.Key(), false)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("%w: relay: %w", ErrNoPath, err)
		}
		m, err := wire.ParseCircuitMsg(reply)
		if err != nil {
			e.badSignals.Add(1)
			return netip.AddrPort{}, fmt.Errorf("%w: bad reply from the relay: %w", ErrNoPath, err)
		}
		switch {
		case m.Kind == wire.CircuitActive:
			var other netip.AddrPort
			if len(m.Relays) == 1 && m.Relays[0].ID == peer {
				other = m.Relays[0].Addr
			}
			return other, nil
		case m.Kind == wire.CircuitPending && !untilActive:
			return netip.AddrPort{}, nil
		case m.Kind != wire.CircuitPending:
			return netip.AddrPort{}, fmt.Errorf("%w: the relay refused the circuit (reason %d)", ErrNoPath, m.Reason)
		}
		t := time.NewTimer(circuitJoinEvery)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return netip.AddrPort{}, fmt.Errorf("%w: the peer did not join the circuit", ErrNoPath)
		}
	}
}

// onCircuitOffer answers a peer's offer of a circuit: it picks the relay,
// admits the session as it admits an ICE offer (session.go), and starts
// the goroutine that joins the circuit and accepts the peer's QUIC
// connection over it.
func (e *Engine) onCircuitOffer(from overlay.ID, offer wire.CircuitMsg) []byte {
	refuse := func(reason byte) []byte { return circuitReply(offer.Circuit, wire.CircuitRefuse, reason) }
	relay, ok := e.chooseRelay(from, offer.Relays)
	if !ok {
		return refuse(wire.CircuitNoChoice)
	}
	var subnet netip.Prefix
	if p, ok := e.ov.PeerInfo(from); ok && p.Addr.IsValid() {
		subnet = overlay.Subnet(p.Addr.Addr())
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if s := e.sessions[offer.Circuit]; s != nil {
		if s.peer != from || s.answer == nil {
			return refuse(wire.CircuitBusy)
		}
		return s.answer // a retransmitted offer
	}
	if e.closed {
		return refuse(wire.CircuitClosing)
	}
	verdict, history, victim, d := e.takeOfferLocked(from, subnet)
	switch verdict {
	case offerBusy:
		return refuse(wire.CircuitBusy)
	case offerConflict:
		return refuse(wire.CircuitConflict)
	}
	s := newSession(e.scope.Context(), from, false)
	s.id, s.subnet, s.history = offer.Circuit, subnet, history
	ans := wire.CircuitMsg{Kind: wire.CircuitAnswer, Circuit: offer.Circuit, Peer: relay.ID}
	e.describeNAT(&ans)
	s.answer, _ = wire.AppendCircuitMsg(nil, ans)
	pn := peerNATOf(offer)
	if !e.startOfferLocked(s, d, victim, func(life context.Context, d *dial) { e.circuitAnswer(life, s, d, relay, pn) }) {
		return refuse(wire.CircuitClosing)
	}
	return s.answer
}

// chooseRelay picks, among the relays a peer offered, the one this node
// has the fastest direct link with, or else the first it could link with.
func (e *Engine) chooseRelay(from overlay.ID, offered []wire.CircuitRelay) (overlay.Peer, bool) {
	usable := func(r wire.CircuitRelay) bool {
		id := overlay.ID(r.ID)
		return id != from && id != e.self && r.Addr.IsValid()
	}
	rtt := make(map[overlay.ID]time.Duration)
	for _, c := range e.ov.DirectContacts(circuitContacts) {
		rtt[c.ID] = c.RTT
	}
	var best *wire.CircuitRelay
	for i, r := range offered {
		if _, linked := rtt[r.ID]; !linked || !usable(r) {
			continue
		}
		if best == nil || rttOrder(rtt[r.ID], rtt[best.ID]) < 0 {
			best = &offered[i]
		}
	}
	if best != nil {
		p, ok := e.ov.PeerInfo(best.ID)
		if ok && p.Addr.IsValid() {
			return overlay.Peer{ID: best.ID, Addr: p.Addr, Public: true}, true
		}
	}
	for _, r := range offered {
		if usable(r) {
			return overlay.Peer{ID: r.ID, Addr: r.Addr, Public: true}, true
		}
	}
	return overlay.Peer{}, false
}

// circuitAnswer runs the answering end of circuit session s, to complete
// d, as answer does for an ICE session.
func (e *Engine) circuitAnswer(life context.Context, s *session, d *dial, relay overlay.Peer, pn peerNAT) {
	defer e.dropSession(s)
	ctx, cancel := context.WithTimeout(life, answerTimeout)
	defer cancel()
	defer context.AfterFunc(s.failed, cancel)()
	err := e.circuitAnswerPath(ctx, s, d, relay, pn)
	if err != nil {
		e.cfg.Logger.Debug("incoming circuit failed", "peer", shortID(s.peer), "err", err)
	}
	e.finishAnswer(s, d, err)
}

// circuitAnswerPath links with the relay if needed, joins the circuit and
// listens on a transport over it for the peer's one connection.
func (e *Engine) circuitAnswerPath(ctx context.Context, s *session, d *dial, relay overlay.Peer, pn peerNAT) error {
	p, ok := e.ov.PeerInfo(relay.ID)
	if !ok || !p.Addr.IsValid() {
		if _, err := e.ov.LinkWith(ctx, relay, s.peer); err != nil {
			return fmt.Errorf("%w: linking with the relay: %w", ErrNoPath, err)
		}
		if p, ok = e.ov.PeerInfo(relay.ID); !ok || !p.Addr.IsValid() {
			return fmt.Errorf("%w: no direct link with the relay", ErrNoPath)
		}
	}
	end := e.newEnd(s.id, relay.ID, p.Addr)
	cc := end.conn
	peerAddr, err := e.joinCircuit(ctx, end, relay.ID, s.peer, false)
	if err != nil {
		cc.Close()
		return err
	}
	tr := &quic.Transport{Conn: cc.QUICConn()}
	ln, err := tr.Listen(serverTLS(e.cert), e.circuitQUICConfig())
	e.mu.Lock()
	e.circuitEnds[s.peer] = end
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		if e.circuitEnds[s.peer] == end {
			delete(e.circuitEnds, s.peer)
		}
		e.mu.Unlock()
	}()
	if err == nil && !e.scope.Go(func(life context.Context) { e.acceptConns(life, ln, tr, s.peer) }) {
		err = net.ErrClosed
	}
	if err != nil {
		tr.Close()
		cc.Close()
		return err
	}
	select {
	case <-d.done:
		if d.pc == nil || d.pc.tr != tr {
			tr.Close()
			cc.Close()
			return nil
		}
		e.endICEAnswers(s)
		e.watchPath(d.pc, end, relay.ID, s.peer, peerAddr, pn)
		return nil
	case <-ctx.Done():
		tr.Close()
		cc.Close()
		return ctx.Err()
	}
}

// endICEAnswers ends the incoming ICE sessions of circuit session s's peer
// that found no pair: the peer's ICE attempt gave way to the circuit
// (headstart.go), which now carries the connection.
func (e *Engine) endICEAnswers(s *session) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, o := range e.sessions {
		if o != s && !o.outgoing && o.peer == s.peer && !o.progress.Load() {
			o.fail()
		}
	}
}
