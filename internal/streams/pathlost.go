package streams

import (
	"net"
	"net/netip"
	"time"

	"github.com/p2psock/p2psock/overlay"
)

// Lost paths (docs/PROTOCOL.md, §12.14): a connection on the node's socket
// whose NAT mapping changed. Every watchEvery, the engine looks at its
// direct connections on the socket: one that sent packets and received none
// since the last look may have lost its path, and its peer is sent a Ping
// with FlagPathLost along it (overlay.ProbePath). If this node's mapping
// changed, that Ping comes through the new one; the peer proves the new
// address and, if it dialled the connection, sends its QUIC packets there
// (nat.Socket.Redirect): quic-go still names the old address. A connection
// that this node accepted needs no redirect, as QUIC follows its client.
// Looking costs nothing while no such connection exists: the timer runs
// only while there are some.

const (
	watchEvery = time.Second    // how often the direct connections are looked at
	probeGap   = 2 * watchEvery // at most one PathLost Ping per connection this often
)

// watch is what the last look saw of a connection (only the look uses it).
type watch struct {
	seen       bool
	sent, recv uint64
	stalls     int // looks in a row that saw packets sent and none received
	probed     time.Time
}

// onSocket reports whether pc runs straight over the node's socket: not
// over a transport of its own (a circuit or a relayed ICE path) nor to a
// relay.
func (pc *peerConn) onSocket() bool { return pc.tr == nil && !pc.relayed }

// watched reports whether the looks cover pc: a live connection on the
// node's socket, or over a circuit (through its relay, or on the direct
// path it found).
func (pc *peerConn) watched() bool {
	if !pc.alive() {
		return false
	}
	if pc.circ != nil {
		return pc.circ.relayID != (overlay.ID{})
	}
	return pc.onSocket()
}

// watchConnsLocked starts the looks at the direct connections, if they do
// not run.
func (e *Engine) watchConnsLocked() {
	if e.watching || e.closed {
		return
	}
	e.watching = true
	if e.watchTimer == nil {
		e.watchTimer = time.AfterFunc(watchEvery, e.lookAtConns)
		return
	}
	e.watchTimer.Reset(watchEvery)
}

// lookAtConns is one look at the direct connections (see above).
func (e *Engine) lookAtConns() {
	e.mu.Lock()
	var conns []*peerConn
	for _, pc := range e.peers {
		if pc.watched() {
			conns = append(conns, pc)
		}
	}
	if e.closed || len(conns) == 0 {
		e.watching = false
		e.mu.Unlock()
		return
	}
	e.mu.Unlock()
	now := time.Now()
	for _, pc := range conns {
		st := pc.qc.ConnectionStats()
		w := &pc.watch
		stalled := w.seen && st.PacketsSent > w.sent && st.PacketsReceived == w.recv
		w.seen, w.sent, w.recv = true, st.PacketsSent, st.PacketsReceived
		if stalled {
			w.stalls++
		} else {
			w.stalls = 0
		}
		if end := pc.circ; end != nil && w.stalls >= 2 && end.direct.Load() != nil {
			// A circuit's direct path that heard nothing for two looks
			// (one may be a keepalive whose answer is on its way): back
			// to the relay at once; its probes look for a direct path
			// again (circuitpath.go).
			end.direct.Store(nil)
			end.via.Store(nil)
			end.conn.SendTo(end.conn.Relay())
			e.cfg.Logger.Debug("circuit: direct path hears nothing, back to the relay", "peer", shortID(pc.id))
		}
		if stalled && now.Sub(w.probed) >= probeGap {
			w.probed = now
			id, to := pc.id, pc.sendsTo()
			if pc.circ != nil { // the relay must see where this end is now
				id, to = pc.circ.relayID, pc.circ.relay
			}
			e.cfg.Logger.Debug("connection hears nothing: PathLost ping", "peer", shortID(pc.id), "to", to.String())
			e.ov.ProbePath(id, to)
		}
	}
	e.mu.Lock()
	if !e.closed {
		e.watchTimer.Reset(watchEvery)
	} else {
		e.watching = false
	}
	e.mu.Unlock()
}

// sendsTo returns where pc's packets go: the redirect if there is one,
// else the connection's remote address.
func (pc *peerConn) sendsTo() netip.AddrPort {
	if a := pc.redirect.Load(); a != nil {
		return *a
	}
	return remoteAddrPort(pc.qc.RemoteAddr())
}

func remoteAddrPort(a net.Addr) netip.AddrPort {
	if ua, ok := a.(*net.UDPAddr); ok {
		ap := ua.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

// onPathLost follows a peer that said its connection with this node heard
// nothing and proved that it is at addr now (overlay.OnPathLost): the
// connection this node dialled to it sends there from now on, and so do
// the circuits this node relays for it.
func (e *Engine) onPathLost(id overlay.ID, addr netip.AddrPort) {
	e.circ.moveEnd(id, addr) // the circuits it is an end of, that this node relays
	e.mu.Lock()
	defer e.mu.Unlock()
	pc := e.peers[id]
	if pc == nil || e.closed || !pc.onSocket() || pc.incoming || pc.sendsTo() == addr {
		return
	}
	dialled := remoteAddrPort(pc.qc.RemoteAddr())
	if owner := e.redirected[dialled]; owner != nil && owner != pc {
		return // another live connection was dialled to that address
	}
	if !e.sock.Redirect(dialled, addr) {
		return
	}
	pc.redirect.Store(&addr)
	e.redirected[dialled] = pc
	e.cfg.Logger.Debug("connection follows its peer", "peer", shortID(id), "from", dialled.String(), "to", addr.String())
}

// endRedirect removes pc's redirect, if it has one, as pc ends.
func (e *Engine) endRedirect(pc *peerConn) {
	if pc.redirect.Load() == nil {
		return
	}
	dialled := remoteAddrPort(pc.qc.RemoteAddr())
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.redirected[dialled] == pc {
		delete(e.redirected, dialled)
		e.sock.Redirect(dialled, netip.AddrPort{})
	}
}
