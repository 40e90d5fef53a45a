// Package nat owns a p2psock node's UDP socket: one port carries QUIC, STUN and
// the overlay's frames. A quic.Transport reads the socket; the packets that are
// not QUIC are demultiplexed by their first byte to the handlers registered with
// Socket.Handle.
//
//	s, err := nat.Listen("127.0.0.1:0")
//	if err != nil { ... }
//	s.Handle(0x20, 0x3F, func(pkt []byte, from net.Addr) { ... })
//	s.Start()
//	defer s.Close()
package nat
