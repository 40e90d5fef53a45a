package streams

import (
	"cmp"
	"slices"
	"time"

	"github.com/p2psock/p2psock/overlay"
)

// ConnInfo describes one of the node's QUIC connections, for tools that show
// them (the node's view page, its metrics).
type ConnInfo struct {
	Peer     overlay.ID
	Path     Path
	Incoming bool      // the peer opened it to this node's socket
	Since    time.Time // when it was adopted
	Streams  int       // its streams the program has not closed
	// BytesSent and BytesReceived are QUIC's counts of the connection's
	// packets, headers included.
	BytesSent, BytesReceived uint64
}

// Conns returns the node's live connections, one per peer, by peer ID.
func (e *Engine) Conns() []ConnInfo {
	e.mu.Lock()
	pcs := make([]*peerConn, 0, len(e.peers))
	for _, pc := range e.peers {
		pcs = append(pcs, pc)
	}
	e.mu.Unlock()
	out := make([]ConnInfo, 0, len(pcs))
	for _, pc := range pcs {
		st := pc.qc.ConnectionStats()
		pc.mu.Lock()
		n := len(pc.streams)
		pc.mu.Unlock()
		out = append(out, ConnInfo{Peer: pc.id, Path: pc.path(), Incoming: pc.incoming, Since: pc.since,
			Streams: n, BytesSent: st.BytesSent, BytesReceived: st.BytesReceived})
	}
	slices.SortFunc(out, func(a, b ConnInfo) int { return cmp.Compare(string(a.Peer[:]), string(b.Peer[:])) })
	return out
}

// RelayBytes returns what the node's own TURN relay (Config.RelayAddr)
// moved for its clients: bytes from their peers (in) and to them (out). Both
// are 0 on a node that runs no relay.
func (e *Engine) RelayBytes() (in, out uint64) {
	if e.relay == nil {
		return 0, 0
	}
	return e.relay.Bytes()
}
