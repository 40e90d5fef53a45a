package streams

import (
	"context"
	"errors"

	"github.com/quic-go/quic-go"

	"github.com/p2psock/p2psock/overlay"
)

// Datagrams (RFC 9221) on the one QUIC connection per pair: the engine
// carries them for the front door's packet conns and leaves their contents
// to it (docs/PROTOCOL.md, §12.8). Every connection negotiates them; one
// goroutine per connection receives them, and quic-go's queue of received
// datagrams (128) bounds what waits for it.

// SendDatagram sends data as one QUIC datagram on the live connection to
// remote. It reports false, sending nothing, when there is no such
// connection (it never sets one up), the peer did not negotiate datagrams,
// or data does not fit in one datagram on the path; then the caller sends
// it another way. It blocks while quic-go's send queue of datagrams is full.
func (e *Engine) SendDatagram(remote overlay.ID, data []byte) bool {
	e.mu.Lock()
	pc := e.peers[remote]
	e.mu.Unlock()
	if pc == nil || !pc.alive() || !pc.qc.ConnectionState().SupportsDatagrams.Remote {
		return false
	}
	err := pc.qc.SendDatagram(data)
	var tooLarge *quic.DatagramTooLargeError
	if errors.As(err, &tooLarge) {
		return false
	}
	return err == nil
}

// receiveDatagrams hands the datagrams the peer sends on pc to
// Config.OnDatagram until the connection or the engine's lifetime ends.
func (e *Engine) receiveDatagrams(life context.Context, pc *peerConn) {
	for {
		b, err := pc.qc.ReceiveDatagram(life)
		if err != nil {
			return
		}
		e.cfg.OnDatagram(pc.id, b)
	}
}
