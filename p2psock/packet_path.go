package p2psock

import (
	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/overlay"
)

// A PacketConn's datagram to a node ID takes one of two paths
// (docs/PROTOCOL.md, §7.11, §12.8). Where this node has a QUIC connection to
// the peer (from Connect, Accept or a service stream) that negotiated
// datagrams, and the datagram fits in one QUIC datagram on that path (about
// 1,100 bytes with the header), it is sent as a QUIC datagram (RFC 9221):
// one packet, no acknowledgement, lost as UDP loses it. Otherwise (no
// connection, a larger datagram, WriteToKey, or Config.DatagramsOverOverlay)
// it is a routed overlay message, acknowledged end to end. Both carry the
// same header: the Datagram kind and the service's name hash.

// sendQUICDatagram sends p to the service on the peer to as one QUIC
// datagram if it can; false if the overlay must carry it.
func (s *Service) sendQUICDatagram(p []byte, to ID) bool {
	if s.n.cfg.DatagramsOverOverlay || to == s.n.ID() || len(p) > maxQUICDatagram {
		return false
	}
	frame := wire.AppendServiceHeader(make([]byte, 0, wire.ServiceHeaderLen+len(p)),
		wire.ServiceHeader{Kind: wire.NamedPacket, Name: s.hash}, p)
	return s.n.eng.SendDatagram(to, frame)
}

// maxQUICDatagram is above what any path's QUIC datagram can hold: larger
// datagrams go over the overlay without asking quic-go.
const maxQUICDatagram = 1500

// onDatagram takes a QUIC datagram a peer sent (the engine's OnDatagram):
// to the packet conn of the service it names, if open.
func (n *Node) onDatagram(from overlay.ID, b []byte) {
	h, data, err := wire.ParseServiceHeader(b)
	if err != nil || h.Kind != wire.NamedPacket {
		n.svcCtr.malformed.Add(1)
		return
	}
	n.svcMu.Lock()
	s := n.services[h.Name]
	n.svcMu.Unlock()
	var pc *PacketConn
	if s != nil {
		s.mu.Lock()
		pc = s.pc
		s.mu.Unlock()
	}
	if pc == nil {
		n.svcCtr.noService.Add(1)
		return
	}
	if !pc.deliver(Message{Data: data, From: from, To: n.ID().Key()}) {
		n.svcCtr.queueFull.Add(1)
	}
}
