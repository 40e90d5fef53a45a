package streams

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/p2psock/p2psock/overlay"
)

// QUIC application error codes the engine closes connections and streams
// with (docs/PROTOCOL.md, §12.8).
const (
	closeNodeClosed quic.ApplicationErrorCode = 0x100 // the node is closing
	closeReplaced   quic.ApplicationErrorCode = 0x101 // a newer connection to the same peer replaced it
	closeBadStream  quic.ApplicationErrorCode = 0x102 // a stream began with an unknown version byte
	closeEvicted    quic.ApplicationErrorCode = 0x103 // the node had no room, and the peer had no history with it
	codeReset       quic.ApplicationErrorCode = 0x104 // a stream the program reset (Stream.Reset)
)

// versionWait bounds how long a stream a peer opened may take to send its
// version byte. The peer's streams are admitted one after another, so a
// stream that never sends it holds up only its own peer's later streams.
const versionWait = 5 * time.Second

// peerConn is the one QUIC connection a node keeps with a peer; every stream
// between them is a stream of it.
type peerConn struct {
	id      overlay.ID
	qc      *quic.Conn
	relayed bool
	punched atomic.Bool     // direct to the peer's NAT's mapping (remoteEnd)
	tr      *quic.Transport // a transport of its own over a relayed ICE path or a circuit; nil on the node's socket
	circ    *circuitEnd     // the circuit it runs over, if any (circuitpath.go)
	// closeAgent closes the ICE agent kept for a path whose other end is a
	// relay candidate (nil if none); keeps is its session.
	closeAgent func()
	keeps      *session
	lastFin    atomic.Int64 // when a stream of it last closed its sending side (unix ns)
	leaving    atomic.Bool  // the peer said its node is closing (SignalClose)
	// incoming is true for a connection the peer opened to the node's
	// socket: it counts toward Config.MaxConns and may be evicted.
	incoming bool
	since    time.Time   // when it was adopted
	history  atomic.Bool // this node dialled the peer, or the application accepted a stream of it

	watch    watch                          // the last look at it (pathlost.go)
	redirect atomic.Pointer[netip.AddrPort] // where its packets go instead of its remote address (pathlost.go)

	mu      sync.Mutex
	streams map[*Stream]struct{} // Streams of it not yet closed by the application
}

func (p *peerConn) addStream(s *Stream) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.streams == nil {
		p.streams = make(map[*Stream]struct{})
	}
	p.streams[s] = struct{}{}
}

// streamClosed records that the application closed s; the last one closes a
// connection whose peer is leaving.
func (p *peerConn) streamClosed(s *Stream) {
	p.mu.Lock()
	delete(p.streams, s)
	last := len(p.streams) == 0
	p.mu.Unlock()
	if last && p.leaving.Load() {
		p.qc.CloseWithError(0, "peer left")
	}
}

// openStreams returns the Streams the application has not closed.
func (p *peerConn) openStreams() []*Stream {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*Stream, 0, len(p.streams))
	for s := range p.streams {
		out = append(out, s)
	}
	return out
}

// peerLeft marks p as the connection of a node that is closing: no new
// stream goes on it, its open streams stop sending after the peer's own
// bounds on closing, and it closes once the application has read and closed
// what is open (or at the idle timeout). It runs once per connection: the
// goodbye takes p out of the engine's peers.
func (p *peerConn) peerLeft() {
	p.leaving.Store(true)
	p.mu.Lock()
	none := len(p.streams) == 0
	p.mu.Unlock()
	if none {
		p.qc.CloseWithError(0, "peer left")
		return
	}
	// The peer closed its streams before it said goodbye, and lingers at
	// most maxLinger for what it sent to arrive; after that nothing of it
	// reads or answers. Streams this side still writes to would otherwise
	// learn of it only from the peer's STOP_SENDING, which a peer whose
	// process ended at once may never have sent: at QUIC's idle timeout.
	// Their sending sides stop then, and only those: what the peer sent
	// stays readable (closing the connection would discard it, for a
	// reader slower than the timer).
	time.AfterFunc(goodbyeWait+maxLinger, p.stopWrites)
}

// stopWrites ends the sending side of the streams of p the application
// has not closed: their Writes fail from now on.
func (p *peerConn) stopWrites() {
	for _, s := range p.openStreams() {
		s.qs.CancelWrite(0)
	}
}

func (p *peerConn) path() Path {
	pa := Path{Kind: p.kind(), Local: p.qc.LocalAddr(), Remote: p.qc.RemoteAddr(),
		RTT: p.qc.ConnectionStats().SmoothedRTT}
	pa.Relayed = pa.Kind == overlay.PathRelayed
	if p.circ != nil { // a circuit that found a direct path runs on it
		pa.Remote = p.circ.conn.Target()
		if via := p.circ.via.Load(); via != nil && !pa.Relayed {
			pa.Local = via.pc.LocalAddr() // an extra hard-NAT port carries it (hardnat.go)
		}
	}
	if a := p.redirect.Load(); a != nil { // the peer moved (pathlost.go)
		pa.Remote = net.UDPAddrFromAddrPort(*a)
	}
	return pa
}

// kind says how the connection runs now. A circuit's direct path is a
// hole punched between the two ends' NATs (circuitpath.go).
func (p *peerConn) kind() overlay.PathKind {
	switch {
	case p.circ != nil && p.circ.direct.Load() != nil:
		return overlay.PathPunched
	case p.relayed:
		return overlay.PathRelayed
	case p.punched.Load():
		return overlay.PathPunched
	}
	return overlay.PathDirect
}

// release frees what the connection held besides itself: a relayed path's
// transport and its ICE connection (quic-go does not close a socket it was
// given), or the ICE agent kept for the peer's relay.
func (p *peerConn) release() {
	if p.tr != nil {
		p.tr.Close()
		p.tr.Conn.Close()
	}
	if p.closeAgent != nil {
		p.closeAgent()
	}
}

// kindFromSessionLocked is the kind of path that addr is to peer by the
// candidates of an ICE session with peer still in progress; direct when
// there is none (the peer dialled this node's own address).
func (e *Engine) kindFromSessionLocked(peer overlay.ID, addr net.Addr) overlay.PathKind {
	for _, s := range e.sessions {
		if s.peer == peer {
			return s.kindAt(addr.String())
		}
	}
	return overlay.PathDirect
}

func (p *peerConn) alive() bool { return p.qc.Context().Err() == nil && !p.leaving.Load() }

// acceptConns adopts the QUIC connections ln accepts. On a relayed path's own
// transport (tr non-nil) it takes one connection, from want only.
func (e *Engine) acceptConns(ctx context.Context, ln *quic.Listener, tr *quic.Transport, want overlay.ID) {
	for {
		qc, err := ln.Accept(ctx)
		if err != nil {
			return
		}
		id, err := connPeer(qc)
		if err != nil || (tr != nil && id != want) {
			qc.CloseWithError(0, "unexpected peer")
			continue
		}
		e.mu.Lock()
		keep, kind := e.viaRelay[id], e.pathKinds[id]
		if _, known := e.pathKinds[id]; !known && tr == nil {
			// The peer's QUIC came before this node's ICE session
			// reported its pair: the session's candidates say what
			// the address it came from is.
			kind = e.kindFromSessionLocked(id, qc.RemoteAddr())
		}
		e.mu.Unlock()
		pc := &peerConn{id: id, qc: qc, relayed: tr != nil || keep != nil, tr: tr, keeps: keep, incoming: tr == nil}
		pc.punched.Store(tr == nil && kind == overlay.PathPunched)
		if tr != nil {
			e.mu.Lock()
			if end := e.circuitEnds[id]; end != nil && tr.Conn == end.conn.QUICConn() {
				pc.circ = end
			}
			e.mu.Unlock()
		}
		if keep != nil {
			pc.closeAgent = keep.closeAgent
		}
		e.adopt(pc)
		if tr != nil {
			return
		}
	}
}

// adopt makes pc the connection to its peer: later Dials open streams on
// it, its streams are accepted, and a dial waiting for it completes. It
// reports false, and closes pc, if the engine is closing.
func (e *Engine) adopt(pc *peerConn) bool {
	pc.since = time.Now()
	e.mu.Lock()
	if e.closed || !e.scope.Go(func(life context.Context) { e.acceptStreams(life, pc) }) {
		e.mu.Unlock()
		pc.qc.CloseWithError(closeNodeClosed, "node closed")
		pc.release()
		return false
	}
	old := e.peers[pc.id]
	if old != nil && old.history.Load() {
		pc.history.Store(true)
	}
	e.peers[pc.id] = pc
	if pc.watched() {
		e.watchConnsLocked()
	}
	if d := e.dials[pc.id]; d != nil {
		delete(e.dials, pc.id)
		d.completeLocked(pc, nil)
	}
	e.mu.Unlock()
	if old != nil && old.alive() {
		// One connection per pair: a peer that opens another (it
		// restarted, or found the first dead) replaces the first.
		e.drops.add(dropConnReplaced)
		old.qc.CloseWithError(closeReplaced, "replaced")
	}
	e.cfg.Logger.Debug("connection up", "peer", shortID(pc.id), "relayed", pc.relayed,
		"remote", pc.qc.RemoteAddr().String())
	return true
}

// acceptStreams admits the peer's streams until the connection ends or the
// engine's lifetime does, one after another on this one goroutine: it reads
// each stream's opening (within versionWait) and queues the stream for
// Accept (the queue answers a stream to a named service, service.go). A
// stream waits in the queue as data, not as a goroutine.
func (e *Engine) acceptStreams(life context.Context, pc *peerConn) {
	defer func() {
		e.forget(pc)
		e.endRedirect(pc)
		pc.release()
	}()
	if e.cfg.OnDatagram != nil && pc.qc.ConnectionState().SupportsDatagrams.Local {
		e.scope.Go(func(life context.Context) { e.receiveDatagrams(life, pc) })
	}
	for {
		qs, err := pc.qc.AcceptStream(life)
		if err != nil {
			if !e.isClosing() {
				pc.qc.CloseWithError(closeNodeClosed, "connection failed")
			} // else Close decides how the connection ends
			return
		}
		if e.isClosing() {
			refuse(qs, 0)
			continue
		}
		qs.SetReadDeadline(time.Now().Add(versionWait))
		tag, ok := readOpening(qs)
		if !ok {
			if life.Err() != nil {
				return
			}
			e.drops.add(dropBadVersion)
			refuse(qs, closeBadStream)
			continue
		}
		qs.SetReadDeadline(time.Time{})
		e.queue.push(newStream(qs, pc), tag)
	}
}

// refuse stops a stream in both directions.
func refuse(qs *quic.Stream, code quic.ApplicationErrorCode) {
	qs.CancelRead(quic.StreamErrorCode(code))
	qs.CancelWrite(quic.StreamErrorCode(code))
}

// refuseStream stops a stream the accept queue drops (code 0; a stream to
// a named service that does not listen is answered NoService), and counts
// it by reason.
func (e *Engine) refuseStream(s *Stream, reason dropReason) {
	e.drops.add(reason)
	if reason == dropNoService {
		s.answerNoService()
	} else {
		refuse(s.qs, 0)
	}
	s.pc.streamClosed(s)
}

// Accept waits for the next stream a peer opened to the default service.
// It fails with net.ErrClosed once the engine is closing, or with ctx's
// error.
func (e *Engine) Accept(ctx context.Context) (*Stream, error) {
	return e.AcceptService(ctx, ServiceTag{})
}
