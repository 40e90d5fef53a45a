package nat

import (
	"net"
	"os"
	"sync"
	"time"

	"github.com/pion/ice/v2"
)

// PacketConn turns the connection an ICE agent selected into the
// net.PacketConn a quic.Transport needs, for QUIC over a relayed path. Every
// datagram goes to, and is reported from, the selected pair's remote address.
// Unlike ice.Conn, it implements read deadlines (quic-go relies on them to
// stop its read loop), and Close closes the agent.
type PacketConn struct {
	c          *ice.Conn
	closeAgent func()
	in         chan []byte
	done       chan struct{}
	once       sync.Once

	mu       sync.Mutex
	deadline time.Time
	wake     chan struct{} // closed and replaced when the deadline changes
}

// NewPacketConn wraps c; closeAgent closes its ICE agent (at most once,
// whoever else may also close it), and Close calls it.
func NewPacketConn(c *ice.Conn, closeAgent func()) *PacketConn {
	p := &PacketConn{c: c, closeAgent: closeAgent, in: make(chan []byte, 256), done: make(chan struct{}), wake: make(chan struct{})}
	go p.readLoop()
	return p
}

func (p *PacketConn) readLoop() {
	for {
		b := make([]byte, MaxPacket)
		n, err := p.c.Read(b)
		if err != nil {
			p.Close()
			return
		}
		select {
		case p.in <- b[:n]:
		case <-p.done:
			return
		default: // the reader fell behind: drop, as a socket would
		}
	}
}

// ReadFrom returns the next datagram from the remote candidate.
func (p *PacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		p.mu.Lock()
		dl, wake := p.deadline, p.wake
		p.mu.Unlock()
		var timer *time.Timer
		var expired <-chan time.Time
		if !dl.IsZero() {
			d := time.Until(dl)
			if d <= 0 {
				return 0, nil, os.ErrDeadlineExceeded
			}
			timer = time.NewTimer(d)
			expired = timer.C
		}
		n, again, err := p.wait(b, expired, wake)
		if timer != nil {
			timer.Stop()
		}
		switch {
		case err != nil:
			return 0, nil, err
		case !again:
			return n, p.c.RemoteAddr(), nil
		}
	}
}

// wait takes one datagram into b; again is true if the deadline changed
// meanwhile (wake) and ReadFrom must look at it anew.
func (p *PacketConn) wait(b []byte, expired <-chan time.Time, wake <-chan struct{}) (n int, again bool, err error) {
	select {
	case pkt := <-p.in:
		return copy(b, pkt), false, nil
	case <-p.done:
		return 0, false, net.ErrClosed
	case <-expired:
		return 0, false, os.ErrDeadlineExceeded
	case <-wake:
		return 0, true, nil
	}
}

// WriteTo sends b to the remote candidate, whatever addr says.
func (p *PacketConn) WriteTo(b []byte, _ net.Addr) (int, error) {
	select {
	case <-p.done:
		return 0, net.ErrClosed
	default:
	}
	return p.c.Write(b)
}

// Close closes the ICE agent (and with it any TURN allocation).
func (p *PacketConn) Close() error {
	p.once.Do(func() {
		close(p.done)
		p.closeAgent()
	})
	return nil
}

// Done is closed when the connection is closed, by Close or because the ICE
// agent stopped.
func (p *PacketConn) Done() <-chan struct{} { return p.done }

// LocalAddr is the selected local candidate's address.
func (p *PacketConn) LocalAddr() net.Addr { return p.c.LocalAddr() }

// RemoteAddr is the selected remote candidate's address.
func (p *PacketConn) RemoteAddr() net.Addr { return p.c.RemoteAddr() }

// SetDeadline sets the read deadline; writes do not block.
func (p *PacketConn) SetDeadline(t time.Time) error { return p.SetReadDeadline(t) }

// SetReadDeadline sets the time ReadFrom gives up at.
func (p *PacketConn) SetReadDeadline(t time.Time) error {
	p.mu.Lock()
	p.deadline = t
	close(p.wake)
	p.wake = make(chan struct{})
	p.mu.Unlock()
	return nil
}

// SetWriteDeadline does nothing: writes do not block.
func (p *PacketConn) SetWriteDeadline(time.Time) error { return nil }

// SetReadBuffer does nothing: the ICE connection buffers on its own. (quic-go
// would warn about a connection that lacks it.)
func (p *PacketConn) SetReadBuffer(int) error { return nil }

// SetWriteBuffer does nothing, as SetReadBuffer.
func (p *PacketConn) SetWriteBuffer(int) error { return nil }
