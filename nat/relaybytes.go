package nat

import (
	"net"
	"sync/atomic"
)

// relayBytes counts the payload bytes a relay's allocations moved between
// its clients and their peers.
type relayBytes struct {
	in, out atomic.Uint64
}

// countingConn is an allocation's relay socket, counting what it reads
// (from the client's peers) and writes (to them).
type countingConn struct {
	net.PacketConn
	b *relayBytes
}

func (c *countingConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(p)
	c.b.in.Add(uint64(max(n, 0)))
	return n, addr, err
}

func (c *countingConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	n, err := c.PacketConn.WriteTo(p, addr)
	c.b.out.Add(uint64(max(n, 0)))
	return n, err
}

// Bytes returns the bytes the relay's allocations received from their
// clients' peers (in) and sent to them (out) since the relay started.
func (r *Relay) Bytes() (in, out uint64) { return r.bytes.in.Load(), r.bytes.out.Load() }
