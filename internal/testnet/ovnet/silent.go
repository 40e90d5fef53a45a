package ovnet

import (
	"net"
	"sync/atomic"
)

// SilentConn is a PacketConn that can be made to stop answering: once
// Silence is called it drops every datagram it receives and every one it is
// asked to send, while its socket stays bound, so nothing (no ICMP error, no
// leave message) tells its peers. It is a host that froze or lost its
// network in the middle of a conversation.
type SilentConn struct {
	net.PacketConn
	silent  atomic.Bool
	dropped atomic.Uint64
}

// ListenSilent opens a SilentConn on a UDP socket at addr.
func ListenSilent(addr string) (*SilentConn, error) {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, err
	}
	return &SilentConn{PacketConn: pc}, nil
}

// Silence makes the connection drop everything from now on.
func (c *SilentConn) Silence() { c.silent.Store(true) }

// Dropped returns how many datagrams arrived since Silence and were dropped.
func (c *SilentConn) Dropped() uint64 { return c.dropped.Load() }

// ReadFrom reads the next datagram that arrives while the connection is not
// silenced.
func (c *SilentConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil || !c.silent.Load() {
			return n, addr, err
		}
		c.dropped.Add(1)
	}
}

// WriteTo sends p, or drops it once the connection is silenced.
func (c *SilentConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if c.silent.Load() {
		return len(p), nil
	}
	return c.PacketConn.WriteTo(p, addr)
}

// SetReadBuffer sets the socket's receive buffer size.
func (c *SilentConn) SetReadBuffer(n int) error {
	if u, ok := c.PacketConn.(*net.UDPConn); ok {
		return u.SetReadBuffer(n)
	}
	return nil
}

// SetWriteBuffer sets the socket's send buffer size.
func (c *SilentConn) SetWriteBuffer(n int) error {
	if u, ok := c.PacketConn.(*net.UDPConn); ok {
		return u.SetWriteBuffer(n)
	}
	return nil
}
