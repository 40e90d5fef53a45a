package simnet

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/pion/transport/v2"
)

// packetConn wraps a vnet UDP socket to give it *net.UDPConn semantics; see
// Host.ListenUDP for the differences it papers over.
type packetConn struct {
	conn    transport.UDPConn
	net     transport.Net // the host's network, for Net
	laddr   *net.UDPAddr
	release func(*packetConn)

	mu           sync.Mutex
	closed       bool
	readDeadline time.Time
}

var _ net.PacketConn = (*packetConn)(nil)

// Net returns the simulated network the socket is on: p2psock opens its
// other sockets (ICE relay candidates, a TURN relay) there too.
func (c *packetConn) Net() transport.Net { return c.net }

func (c *packetConn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "udp", Source: c.laddr, Err: err}
}

func (c *packetConn) state() (closed bool, readDeadline time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed, c.readDeadline
}

// ReadFrom reads one datagram into p, truncating it if p is too short.
func (c *packetConn) ReadFrom(p []byte) (int, net.Addr, error) {
	closed, deadline := c.state()
	if closed {
		return 0, nil, c.opError("read", net.ErrClosed)
	}
	if !deadline.IsZero() && !time.Now().Before(deadline) {
		return 0, nil, c.opError("read", os.ErrDeadlineExceeded)
	}
	n, addr, err := c.conn.ReadFrom(p)
	if err == nil || errors.Is(err, io.ErrShortBuffer) {
		return n, addr, nil
	}
	if closed, _ := c.state(); closed {
		return 0, nil, c.opError("read", net.ErrClosed)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return 0, nil, c.opError("read", os.ErrDeadlineExceeded)
	}
	return n, addr, err
}

// WriteTo sends p as one datagram to addr, which must be a *net.UDPAddr or
// an address whose String form is ip:port.
func (c *packetConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if closed, _ := c.state(); closed {
		return 0, c.opError("write", net.ErrClosed)
	}
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		if addr == nil {
			return 0, c.opError("write", errors.New("missing address"))
		}
		ap, err := netip.ParseAddrPort(addr.String())
		if err != nil {
			return 0, c.opError("write", fmt.Errorf("unsupported address %v: %w", addr, err))
		}
		ua = net.UDPAddrFromAddrPort(ap)
	}
	return c.conn.WriteTo(p, ua)
}

// Close closes the socket and unblocks any pending ReadFrom.
func (c *packetConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return c.opError("close", net.ErrClosed)
	}
	c.closed = true
	c.mu.Unlock()
	err := c.conn.Close()
	c.release(c)
	return err
}

// LocalAddr returns the host's own IP and the bound port.
func (c *packetConn) LocalAddr() net.Addr {
	a := *c.laddr
	return &a
}

// SetDeadline sets the read deadline; writes never block.
func (c *packetConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

// SetReadDeadline sets the deadline for pending and future reads.
func (c *packetConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.opError("set", net.ErrClosed)
	}
	c.readDeadline = t
	return c.conn.SetReadDeadline(t)
}

// SetWriteDeadline does nothing: writes never block.
func (c *packetConn) SetWriteDeadline(time.Time) error { return nil }

// SetReadBuffer does nothing; vnet queues up to 1024 datagrams per socket.
func (c *packetConn) SetReadBuffer(int) error { return nil }

// SetWriteBuffer does nothing; vnet writes never block or drop.
func (c *packetConn) SetWriteBuffer(int) error { return nil }
