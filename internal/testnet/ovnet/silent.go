package ovnet

import (
	"net"
	"sync/atomic"
	"testing"

	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/overlay"
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

// JoinSilent opens a node on a SilentConn on loopback, with cfg, joins it to
// tn through the network's first node and adds it to tn (so it closes at the
// end of the test); attach is as for Open. The test silences it with the
// returned connection.
func JoinSilent(t testing.TB, tn *testnet.Net[*Node], cfg overlay.Config, attach func(*Node) error) (*Node, *SilentConn) {
	t.Helper()
	sc, err := ListenSilent(testnet.LoopbackAddr(len(tn.Nodes)))
	if err != nil {
		t.Fatalf("opening a socket: %v", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = testnet.Logger(t)
	}
	nd, err := Open(cfg, "", sc, attach)
	if err != nil {
		sc.Close()
		t.Fatalf("opening a node: %v", err)
	}
	if err := nd.Bind([]string{tn.Nodes[0].Addr()}); err != nil {
		t.Fatalf("joining: %v", err)
	}
	tn.Nodes = append(tn.Nodes, nd)
	return nd, sc
}
