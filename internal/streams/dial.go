package streams

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v2"
	"github.com/quic-go/quic-go"

	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/nat"
	"github.com/p2psock/p2psock/overlay"
)

// Connecting, top down: Dial opens a stream on the peer's connection, which
// peerConn returns, setting one up through a dial if there is none; the
// dial's owner runs dialPeer, which makes one attempt (one ICE session and a
// QUIC handshake) and, if it found no path, one more through a relay.

// streamVersion is the byte Dial writes first on each stream, so that the
// peer's Accept sees the stream at once (QUIC announces a stream with its
// first data) and so that the stream protocol can evolve.
const streamVersion byte = 1

// StreamVersion is the stream protocol's version byte, exported for the
// benchmarks that compare the engine with plain quic-go.
const StreamVersion = streamVersion

// Dial opens a stream to the node with ID remote, on the connection to it,
// which it sets up if there is none (docs/PROTOCOL.md, §12.4). If the
// connection turns out to be dead (the peer restarted, say), Dial forgets it
// and sets up a new one, once. Errors are ErrNoPath, ErrPeerIdentity,
// ErrRefused, the overlay's (ErrUnreachable), net.ErrClosed once the engine
// is closing, and ctx's. Give ctx a deadline: an attempt whose ICE fails
// ends on its own, but waiting for the peer's side of a simultaneous
// connect does not.
func (e *Engine) Dial(ctx context.Context, remote overlay.ID) (*Stream, error) {
	for retried := false; ; retried = true {
		pc, err := e.peerConn(ctx, remote)
		if err != nil {
			return nil, err
		}
		if !pc.history.Swap(true) {
			e.remember(remote)
		}
		qs, err := pc.qc.OpenStreamSync(ctx)
		if err == nil {
			if _, err = qs.Write([]byte{streamVersion}); err == nil {
				return newStream(qs, pc), nil
			}
		}
		if ctx.Err() != nil || retried || pc.alive() {
			return nil, err
		}
		e.forget(pc)
	}
}

// dial is the establishment of a connection to a peer: by this node's Dial
// (outgoing, created by peerConn) or by the peer's offer (incoming, created
// by onOffer, or taken over from an outgoing one when both connect at once).
// Every Dial to the peer waits for it. It is completed, once, under
// Engine.mu, by whoever removes it from Engine.dials: adopt with the
// connection, the owner of a failed attempt or answer with the error, or
// Close.
type dial struct {
	done     chan struct{}      // closed when complete
	pc       *peerConn          // the connection, on success
	err      error              // else why not
	incoming bool               // the peer's offer owns it now
	cancel   context.CancelFunc // cancels this node's outgoing attempt, if any
}

// completeLocked ends d with pc or err; Engine.mu is held and d was just
// removed from Engine.dials.
func (d *dial) completeLocked(pc *peerConn, err error) {
	d.pc, d.err = pc, err
	close(d.done)
}

// peerConn returns the live connection to remote, setting one up if needed:
// it waits for the dial in progress, or starts one and runs it.
func (e *Engine) peerConn(ctx context.Context, remote overlay.ID) (*peerConn, error) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, net.ErrClosed
	}
	if pc := e.peers[remote]; pc != nil && pc.alive() {
		e.mu.Unlock()
		return pc, nil
	}
	d := e.dials[remote]
	if d != nil {
		e.mu.Unlock()
		return d.wait(ctx)
	}
	d = &dial{done: make(chan struct{})}
	actx, cancel := context.WithCancel(ctx)
	d.cancel = cancel
	e.dials[remote] = d
	e.mu.Unlock()

	pc, err := e.dialPeer(actx, remote)
	cancel()
	if pc != nil {
		if !e.adopt(pc) {
			return nil, net.ErrClosed
		}
		return pc, nil
	}
	e.mu.Lock()
	// The peer's own offer took over d (and completes it), or Close
	// completed it; otherwise the failure is d's.
	if !d.incoming && !errors.Is(err, errYield) && e.dials[remote] == d {
		delete(e.dials, remote)
		d.completeLocked(nil, err)
	}
	e.mu.Unlock()
	return d.wait(ctx)
}

// wait waits for d to complete, or for ctx.
func (d *dial) wait(ctx context.Context) (*peerConn, error) {
	select {
	case <-d.done:
		return d.pc, d.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// dialPeer sets up a connection to remote. When a public node can relay
// a circuit for the pair, the first attempt's ICE has a head start only
// (headstart.go), then the circuit takes over, and upgrades to a direct
// path on its own; if no circuit can be set up, ICE gets its full time. If
// an attempt finds no path and a relay is available, it tries again with
// both sides relayed, then through a circuit.
func (e *Engine) dialPeer(ctx context.Context, remote overlay.ID) (*peerConn, error) {
	relay := e.offerRelay(ctx)
	pc, err := e.attempt(ctx, remote, relay, false, e.mayGiveWay(ctx, remote))
	circuitTried := false
	if errors.Is(err, errGiveWay) {
		e.cfg.Logger.Debug("ICE found no pair in its head start, connecting through a circuit", "peer", shortID(remote))
		pc, err = e.circuitAttempt(ctx, remote)
		if pc != nil || !errors.Is(err, ErrNoPath) || ctx.Err() != nil {
			return pc, err
		}
		circuitTried = true
		pc, err = e.attempt(ctx, remote, relay, false, false)
	}
	if errors.Is(err, ErrNoPath) && !relay && ctx.Err() == nil && len(e.turnServers(ctx)) > 0 {
		e.cfg.Logger.Debug("no direct path, retrying through a relay", "peer", shortID(remote))
		pc, err = e.attempt(ctx, remote, true, true, false)
	}
	if errors.Is(err, ErrNoPath) && ctx.Err() == nil && !circuitTried {
		e.cfg.Logger.Debug("no path, connecting through a circuit", "peer", shortID(remote))
		pc, err = e.circuitAttempt(ctx, remote)
	}
	return pc, err
}

// attempt is one ICE session as the controlling side, then the QUIC
// handshake on the selected path. relay says whether this side gathers
// relay candidates, wantRelay whether it asks the peer to, giveWay whether
// ICE has a head start only and then gives way to a circuit (errGiveWay).
func (e *Engine) attempt(ctx context.Context, remote overlay.ID, relay, wantRelay, giveWay bool) (*peerConn, error) {
	s := newSession(e.scope.Context(), remote, true)
	if err := e.addSession(s); err != nil {
		return nil, err
	}
	defer e.dropSession(s)
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.failed, cancel)() // ICE failed, or the engine's lifetime ended
	agent, err := e.newAgent(actx, s, relay)
	if err != nil {
		return nil, err
	}
	ownAgent := true
	defer func() {
		if ownAgent {
			s.closeAgent()
		}
	}()

	cands := e.hostCandidates()
	if len(cands) == 0 {
		// Relays only: an offer without candidates is refused, so it
		// carries the first the agent gathers (its relay candidate).
		select {
		case c := <-s.out:
			cands = []string{c.Marshal()}
		case <-s.gathered: // and none came
			e.noPath.Add(1)
			return nil, ErrNoPath
		case <-actx.Done():
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, ErrNoPath
		}
	}
	sent := time.Now()
	ans, err := e.offer(actx, s, cands, relay, wantRelay)
	if err != nil {
		return nil, err
	}
	var gaveWay *atomic.Bool
	if giveWay {
		g, now, stop := e.headStart(s, agent, ans, time.Since(sent), cancel)
		if now {
			return nil, errGiveWay
		}
		defer stop()
		gaveWay = g
	}
	e.addRemote(s, ans.Candidates)
	s.startTrickle()
	ic, err := agent.Dial(actx, ans.Ufrag, ans.Pwd)
	if err != nil {
		if gaveWay != nil && gaveWay.Load() && ctx.Err() == nil {
			return nil, errGiveWay
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		e.noPath.Add(1)
		return nil, ErrNoPath
	}
	pair, err := agent.GetSelectedCandidatePair()
	if err != nil || pair == nil {
		return nil, ErrNoPath
	}
	tls := clientTLS(e.cert, remote)
	if pair.Local.Type() == ice.CandidateTypeRelay {
		// This end is a relay candidate: QUIC runs over the ICE
		// connection, on a transport of its own.
		pconn := nat.NewPacketConn(ic, s.closeAgent)
		ownAgent = false
		tr := &quic.Transport{Conn: pconn}
		qc, err := tr.Dial(ctx, pconn.RemoteAddr(), tls, e.quicConfig())
		if err != nil {
			tr.Close()
			pconn.Close()
			return nil, handshakeErr(ctx, err)
		}
		return &peerConn{id: remote, qc: qc, relayed: true, tr: tr}, nil
	}
	raddr, kind := s.remoteEnd(pair)
	relayed := kind == overlay.PathRelayed
	qc, err := e.sock.Transport().Dial(ctx, raddr, tls, e.quicConfig())
	if err != nil {
		return nil, handshakeErr(ctx, err)
	}
	pc := &peerConn{id: remote, qc: qc, relayed: relayed}
	pc.punched.Store(kind == overlay.PathPunched)
	if relayed { // the peer's relay end needs this agent's answers (see answerPath)
		pc.closeAgent, ownAgent = s.closeAgent, false
	}
	return pc, nil
}

// offer sends s's offer, with the candidates cands, to its peer and
// returns the answer.
func (e *Engine) offer(ctx context.Context, s *session, cands []string, relay, wantRelay bool) (wire.Signal, error) {
	offer := wire.Signal{Kind: wire.SignalOffer, Session: s.id, Ufrag: s.ufrag, Pwd: s.pwd, Candidates: cands}
	if relay {
		offer.Flags |= wire.SignalFlagRelay
	}
	if wantRelay {
		offer.Flags |= wire.SignalFlagWantRelay
	}
	msg, err := wire.AppendSignal(nil, offer)
	if err != nil {
		return wire.Signal{}, err
	}
	reply, _, err := e.ov.SendService(ctx, wire.ServiceSignal, msg, s.peer.Key(), false)
	if err != nil {
		return wire.Signal{}, err
	}
	ans, err := wire.ParseSignal(reply)
	if err != nil {
		e.badSignals.Add(1)
		return wire.Signal{}, fmt.Errorf("p2psock: bad answer from peer: %w", err)
	}
	switch ans.Kind {
	case wire.SignalAnswer:
		return ans, nil
	case wire.SignalReject:
		if ans.Reason == wire.RejectConflict {
			return wire.Signal{}, errYield
		}
		return wire.Signal{}, ErrRefused
	}
	return wire.Signal{}, fmt.Errorf("p2psock: unexpected signal %d from peer", ans.Kind)
}

// handshakeErr says why a QUIC handshake failed.
func handshakeErr(ctx context.Context, err error) error {
	switch {
	case isIdentityErr(err):
		return fmt.Errorf("%w (%w)", ErrPeerIdentity, err)
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return fmt.Errorf("p2psock: QUIC handshake: %w", err)
}

// forget drops pc as the peer's connection, if it still is.
func (e *Engine) forget(pc *peerConn) {
	e.mu.Lock()
	if e.peers[pc.id] == pc {
		delete(e.peers, pc.id)
	}
	e.mu.Unlock()
}
