package nat

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"golang.org/x/net/ipv4"
)

// Redirects: a QUIC connection that this node dialled keeps sending to the
// address it was dialled to, even when the peer is proven to be elsewhere
// now (its NAT gave it a new mapping): QUIC moves a connection only when
// its client does (RFC 9000, §9). The Socket rewrites the destination of
// the QUIC packets it sends to such an address (docs/PROTOCOL.md, §12.14).
// Packets of the overlay, STUN and circuits are never rewritten.

// redirectConn is the node's UDP socket as quic-go sees it. It embeds the
// *net.UDPConn, so quic-go keeps its fast path (batched reads, GSO, ECN:
// the conn satisfies quic.OOBCapablePacketConn), overrides the two
// calls quic-go writes with, and the one it reads with (ReadBatch,
// inline.go).
type redirectConn struct {
	*net.UDPConn
	to    *redirects
	batch *ipv4.PacketConn // the batched reads and writes of ReadBatch (inline.go)
	sock  *Socket

	// ReadBatch's, on quic-go's reading goroutine (inline.go)
	taken []bool
	out   []ipv4.Message
	addrs map[netip.AddrPort]*net.UDPAddr
}

// peekConn is a socket that is not a *net.UDPConn (a simulated network's)
// as quic-go sees it: the Socket peeks at each packet it reads, and takes
// those that are not QUIC (Socket.takeNonQUIC).
type peekConn struct {
	net.PacketConn
	sock *Socket
}

func (c *peekConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, from, err := c.PacketConn.ReadFrom(b)
		if err != nil || n == 0 || !isNonQUIC(b[0]) {
			if err == nil {
				c.sock.peeked(b[:n])
			}
			return n, from, err
		}
		c.sock.takeNonQUIC(b[:n], from)
	}
}

func (c *peekConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if addr == net.Addr(startAddr) {
		return 0, nil
	}
	return c.PacketConn.WriteTo(b, addr)
}

// SetReadBuffer and SetWriteBuffer pass quic-go's socket buffer sizes on
// to the conn, if it takes them.
func (c *peekConn) SetReadBuffer(n int) error {
	if bc, ok := c.PacketConn.(interface{ SetReadBuffer(int) error }); ok {
		return bc.SetReadBuffer(n)
	}
	return errors.ErrUnsupported
}

func (c *peekConn) SetWriteBuffer(n int) error {
	if bc, ok := c.PacketConn.(interface{ SetWriteBuffer(int) error }); ok {
		return bc.SetWriteBuffer(n)
	}
	return errors.ErrUnsupported
}

// startAddr is where Socket.Start writes an empty packet through quic-go's
// transport, to start it (its read loop) without ReadNonQUICPacket, which
// would make a queue of 32 non-QUIC packets (3 KiB a node) that quic-go
// never fills here: the Socket takes those packets before quic-go sees
// them. The conns below drop a write to it.
var startAddr = &net.UDPAddr{}

func (c *redirectConn) WriteMsgUDP(b, oob []byte, addr *net.UDPAddr) (n, oobn int, err error) {
	if addr == startAddr {
		return 0, 0, nil
	}
	return c.UDPConn.WriteMsgUDP(b, oob, c.to.rewrite(b, addr))
}

func (c *redirectConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if addr == net.Addr(startAddr) {
		return 0, nil
	}
	if ua, ok := addr.(*net.UDPAddr); ok {
		addr = c.to.rewrite(b, ua)
	}
	return c.UDPConn.WriteTo(b, addr)
}

// redirects maps the addresses connections were dialled to onto where the
// peers are now. Reads are lock-free: the map is replaced on each change.
type redirects struct {
	mu sync.Mutex
	m  atomic.Pointer[map[netip.AddrPort]*net.UDPAddr]
}

// rewrite returns where b, sent to addr, goes: addr unless b is a QUIC
// packet (bit 0x40 of its first byte, which no overlay, circuit or STUN
// packet has) to a redirected address.
func (r *redirects) rewrite(b []byte, addr *net.UDPAddr) *net.UDPAddr {
	m := r.m.Load()
	if m == nil || len(b) == 0 || b[0]&0x40 == 0 || addr == nil {
		return addr
	}
	if to, ok := (*m)[unmapAddr(addr.AddrPort())]; ok {
		return to
	}
	return addr
}

func (r *redirects) set(from, to netip.AddrPort) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[netip.AddrPort]*net.UDPAddr)
	if old := r.m.Load(); old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	if to.IsValid() && to != from {
		m[from] = net.UDPAddrFromAddrPort(to)
	} else {
		delete(m, from)
	}
	if len(m) == 0 {
		r.m.Store(nil)
		return
	}
	r.m.Store(&m)
}

func unmapAddr(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

// Redirect makes the QUIC packets the socket sends to from go to to
// instead; a to equal to from, or invalid, ends the redirect. It reports
// false when the socket cannot rewrite (a PacketConn that is not a
// *net.UDPConn was given to NewSocket).
func (s *Socket) Redirect(from, to netip.AddrPort) bool {
	if s.redirects == nil {
		return false
	}
	s.redirects.set(unmapAddr(from), unmapAddr(to))
	return true
}
