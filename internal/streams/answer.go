package streams

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/pion/ice/v2"
	"github.com/quic-go/quic-go"

	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/nat"
	"github.com/p2psock/p2psock/overlay"
)

// The controlled side: the signalling service's handler answers a peer's
// offer (onOffer), and a goroutine per answered offer runs the session
// (answer, answerPath) until the connection is up.

// answerTimeout is the controlled side's bound on ICE and the QUIC
// handshake.
const answerTimeout = 15 * time.Second

// handleSignal is the signalling service's handler (service 1). It runs on
// the packet path, so it only records state and starts goroutines.
func (e *Engine) handleSignal(m overlay.Message) ([]byte, bool) {
	sig, err := wire.ParseSignal(m.Data)
	if err != nil {
		e.badSignals.Add(1)
		return nil, true
	}
	from := m.From
	switch sig.Kind {
	case wire.SignalOffer:
		return e.onOffer(from, sig), true
	case wire.SignalClose:
		e.mu.Lock()
		pc := e.peers[from]
		if pc != nil {
			delete(e.peers, from)
		}
		e.mu.Unlock()
		if pc != nil {
			pc.peerLeft()
		}
		return nil, true
	case wire.SignalCandidates:
		e.mu.Lock()
		s := e.sessions[sig.Session]
		e.mu.Unlock()
		if s != nil && s.peer == from {
			e.addRemote(s, sig.Candidates)
		}
		return nil, true
	}
	e.badSignals.Add(1)
	return nil, true
}

// onOffer answers an offer from the peer from, and starts the session that
// completes the dial to it: its own, one this node's Dial started and the
// peer's offer takes over (simultaneous connect), or a new one.
func (e *Engine) onOffer(from overlay.ID, offer wire.Signal) []byte {
	reject := func(reason byte) []byte {
		b, _ := wire.AppendSignal(nil, wire.Signal{Kind: wire.SignalReject, Session: offer.Session, Reason: reason})
		return b
	}
	// What the node knows of the origin, read before e.mu (the overlay has
	// its own lock): its subnet, if it has a direct link with it.
	var subnet netip.Prefix
	if p, ok := e.ov.PeerInfo(from); ok && p.Addr.IsValid() {
		subnet = overlay.Subnet(p.Addr.Addr())
	}
	// The peer dials QUIC once ICE has found a path: the listener opens
	// now, if it is not open yet (engine.go).
	if err := e.listen(); err != nil && !errors.Is(err, net.ErrClosed) {
		e.cfg.Logger.Debug("QUIC listener", "err", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if s := e.sessions[offer.Session]; s != nil {
		if s.peer != from || s.answer == nil {
			return reject(wire.RejectBusy)
		}
		return s.answer // a retransmitted offer
	}
	if e.closed {
		return reject(wire.RejectClosing)
	}
	if usableCandidates(offer.Candidates) == 0 {
		// Nothing to check: a session would only wait for a trickle.
		e.drops.add(dropOfferEmpty)
		return reject(wire.RejectNoCandidates)
	}
	verdict, history, victim, d := e.takeOfferLocked(from, subnet)
	switch verdict {
	case offerBusy:
		return reject(wire.RejectBusy)
	case offerConflict:
		return reject(wire.RejectConflict)
	}
	s := newSession(e.scope.Context(), from, false)
	s.id, s.subnet, s.history = offer.Session, subnet, history
	relay := e.wantRelay() || offer.Flags&wire.SignalFlagWantRelay != 0
	ans := wire.Signal{Kind: wire.SignalAnswer, Session: s.id, Flags: e.answerFlags(), Ufrag: s.ufrag, Pwd: s.pwd, Candidates: e.hostCandidates()}
	if relay {
		ans.Flags |= wire.SignalFlagRelay
	}
	s.answer, _ = wire.AppendSignal(nil, ans)
	// The offer's candidates go first in the agent's checklist (pion checks
	// its pairs in the order they were made), ahead of any the peer
	// trickles before the agent exists: the offer carries the peer's port
	// mapping, if it has one, which the check budget for the peer's IP
	// must not be spent before (portmap.go).
	e.addRemote(s, offer.Candidates)
	if !e.startOfferLocked(s, d, victim, func(life context.Context, d *dial) { e.answer(life, s, d, offer, relay) }) {
		return reject(wire.RejectClosing)
	}
	s.startTrickle()
	return s.answer
}

// addRemote adds candidates the peer of s sent, and counts those past the
// session's bound.
func (e *Engine) addRemote(s *session, cands []string) {
	for range s.addRemote(cands) {
		e.drops.add(dropCandidates)
	}
}

// yieldsTo reports whether this node's outgoing attempt gives way to the
// simultaneous offer of peer: when both nodes connect at once, the offer of
// the node with the smaller ID goes ahead.
func (e *Engine) yieldsTo(peer overlay.ID) bool {
	return bytes.Compare(e.self[:], peer[:]) > 0
}

// answer runs the controlled side of session s, to complete d.
func (e *Engine) answer(life context.Context, s *session, d *dial, offer wire.Signal, relay bool) {
	defer e.dropSession(s)
	ctx, cancel := context.WithTimeout(life, answerTimeout)
	defer cancel()
	err := e.answerPath(ctx, s, d, offer, relay)
	if err != nil {
		e.cfg.Logger.Debug("incoming connection failed", "peer", shortID(s.peer), "err", err)
	}
	e.finishAnswer(s, d, err)
}

// finishAnswer completes d with err when the incoming session s ends
// without the connection, unless another incoming session of the same
// peer (a circuit that followed a failed ICE session) took d over.
func (e *Engine) finishAnswer(s *session, d *dial, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.dials[s.peer] != d {
		return
	}
	for _, o := range e.sessions {
		if o != s && !o.outgoing && o.peer == s.peer {
			return
		}
	}
	delete(e.dials, s.peer)
	if err == nil {
		err = ErrNoPath
	}
	d.completeLocked(nil, err)
}

// answerPath runs ICE as the controlled agent, then waits until the peer's
// QUIC connection on the selected path completes d.
func (e *Engine) answerPath(ctx context.Context, s *session, d *dial, offer wire.Signal, relay bool) error {
	agent, err := e.newAgent(ctx, s, relay)
	if err != nil {
		return err
	}
	defer context.AfterFunc(s.failed, s.closeAgent)()
	ic, err := agent.Accept(ctx, offer.Ufrag, offer.Pwd)
	if err != nil {
		e.cfg.Logger.Debug("ICE found no pair", "peer", shortID(s.peer), "throttled", e.ice.ChecksThrottled(), "pairs", pairSummary(agent))
		s.closeAgent()
		e.noPath.Add(1)
		return ErrNoPath
	}
	pair, err := agent.GetSelectedCandidatePair()
	if err != nil || pair == nil {
		s.closeAgent()
		return ErrNoPath
	}
	if pair.Local.Type() == ice.CandidateTypeRelay {
		// The peer's QUIC packets arrive through the relay: listen on a
		// transport over the ICE connection for the one connection.
		pconn := nat.NewPacketConn(ic, s.closeAgent)
		tr := &quic.Transport{Conn: pconn}
		ln, err := tr.Listen(serverTLS(e.cert), e.quicConfig())
		if err == nil && !e.scope.Go(func(life context.Context) { e.acceptConns(life, ln, tr, s.peer) }) {
			err = net.ErrClosed
		}
		if err != nil {
			tr.Close()
			pconn.Close()
			return err
		}
		select {
		case <-d.done:
			return nil
		case <-ctx.Done():
			tr.Close()
			pconn.Close()
			return ctx.Err()
		}
	}
	// This end is the node's socket: the peer dials the node's own QUIC
	// listener, which adopts the connection and completes d. The agent is no
	// longer needed after that, unless the peer's end is its relay
	// candidate: the peer's agent keeps checking the pair through the relay,
	// and fails the path (closing its allocation) if nothing answers, so the
	// agent lives as long as the connection (peerConn.closeAgent).
	raddr, kind := s.remoteEnd(pair)
	keep := kind == overlay.PathRelayed
	// The peer's QUIC packets come from raddr, which ICE just validated:
	// no Retry for them, and no per-IP quota (a relay's address is many
	// peers').
	defer e.expect(raddr)()
	// The connection the node's listener adopts learns its path's kind from
	// pathKinds (and, through a relay, the agent to keep from viaRelay).
	e.mu.Lock()
	e.pathKinds[s.peer] = kind
	if keep {
		e.viaRelay[s.peer] = s
	}
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		if e.viaRelay[s.peer] == s {
			delete(e.viaRelay, s.peer)
		}
		if e.pathKinds[s.peer] == kind {
			delete(e.pathKinds, s.peer)
		}
		e.mu.Unlock()
	}()
	select {
	case <-d.done:
		if !keep || d.pc == nil || d.pc.keeps != s {
			s.closeAgent()
		}
		if d.pc != nil && d.pc.incoming && kind == overlay.PathPunched {
			// The peer's QUIC may have come before pathKinds had the kind.
			d.pc.punched.Store(true)
		}
		return nil
	case <-ctx.Done():
		s.closeAgent()
		return ctx.Err()
	}
}

// offerVerdict is what takeOfferLocked decided of an incoming offer.
type offerVerdict int

const (
	offerTaken    offerVerdict = iota
	offerBusy                  // no room in the incoming session pool (counted)
	offerConflict              // this node's own dial to the peer goes on
)

// takeOfferLocked admits an offer (ICE or circuit) from the peer from, of
// subnet: whether the peer has history, whether the incoming session pool
// has room for it (victim: a session to evict for it), and whether this
// node's own dial to the peer yields to it (then that dial, d, becomes the
// incoming one; nil: none).
func (e *Engine) takeOfferLocked(from overlay.ID, subnet netip.Prefix) (verdict offerVerdict, history bool, victim *session, d *dial) {
	_, history = e.known[from]
	if pc := e.peers[from]; pc != nil && pc.history.Load() {
		history = true
	}
	reason, victim := e.admitOfferLocked(from, subnet, history)
	if reason >= 0 {
		e.drops.add(reason)
		return offerBusy, history, nil, nil
	}
	d = e.dials[from]
	if d != nil && !d.incoming {
		if !e.yieldsTo(from) {
			return offerConflict, history, nil, nil
		}
		d.incoming = true
		d.cancel()
	}
	return offerTaken, history, victim, d
}

// startOfferLocked runs the answering side of session s on d (a new
// incoming dial if nil) and registers both, evicting victim; it reports
// false if the engine is closing.
func (e *Engine) startOfferLocked(s *session, d *dial, victim *session, run func(life context.Context, d *dial)) bool {
	newDial := d == nil
	if newDial {
		d = &dial{done: make(chan struct{}), incoming: true}
	}
	if !e.scope.Go(func(life context.Context) { run(life, d) }) {
		return false
	}
	if victim != nil {
		// It ends on its own goroutine; its place is free at once.
		delete(e.sessions, victim.id)
		victim.fail()
		e.drops.add(dropSessionEvicted)
	}
	if newDial {
		e.dials[s.peer] = d
	}
	e.sessions[s.id] = s
	return true
}
