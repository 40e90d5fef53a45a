package nat

import (
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/p2psock/p2psock/internal/wire"
)

// CircuitConn is the net.PacketConn a quic.Transport runs on for one end of
// a circuit (docs/PROTOCOL.md, §12.12): every datagram written goes out of
// the node's Socket inside a Circuit frame, to the relay (or, once a direct
// path to the peer is known, straight to the peer, which takes the same
// frames); the frames of the circuit the node receives are handed to
// Deliver, and ReadFrom returns their payloads. To QUIC the peer is always
// at the relay's address, so a change of path is invisible to it.
type CircuitConn struct {
	sock    *Socket
	id      [8]byte
	relay   *net.UDPAddr
	to      atomic.Pointer[circuitTarget] // where frames go now
	onClose func()
	quic    net.PacketConn // QUICConn
	in      chan []byte
	done    chan struct{}
	once    sync.Once

	mu       sync.Mutex
	deadline time.Time
	wake     chan struct{} // closed and replaced when the deadline changes

	dropped atomic.Uint64
	batches atomic.Uint64 // GSO batches sent (circuitbatch.go)
	batched atomic.Uint64 // frames sent in them
}

// circuitTarget is where a CircuitConn sends its frames: to addr, out of
// via, or out of the node's Socket if via is nil.
type circuitTarget struct {
	addr *net.UDPAddr
	via  net.PacketConn
}

// circuitQueue is the number of received datagrams a CircuitConn holds for
// its reader; more are dropped, as a socket's buffer would.
const circuitQueue = 512

// NewCircuitConn returns the end of circuit id on sock whose relay is at
// relay. onClose (may be nil) runs once, when the conn is closed.
func NewCircuitConn(sock *Socket, id [8]byte, relay *net.UDPAddr, onClose func()) *CircuitConn {
	c := &CircuitConn{sock: sock, id: id, relay: relay, onClose: onClose,
		in: make(chan []byte, circuitQueue), done: make(chan struct{}), wake: make(chan struct{})}
	c.to.Store(&circuitTarget{addr: relay})
	c.quic = c
	if uc, ok := sock.pc.(*net.UDPConn); ok {
		c.quic = &circuitDFConn{CircuitConn: c, uc: uc}
	}
	return c
}

// ID returns the circuit's ID.
func (c *CircuitConn) ID() [8]byte { return c.id }

// Relay returns the relay's address.
func (c *CircuitConn) Relay() *net.UDPAddr { return c.relay }

// SendTo makes the conn send its frames to addr (the peer's address on a
// direct path, or the relay's).
func (c *CircuitConn) SendTo(addr *net.UDPAddr) { c.to.Store(&circuitTarget{addr: addr}) }

// SendVia makes the conn send its frames to addr out of via, a socket of
// the node's other than its Socket (the one of a hard NAT's extra mappings
// that reached the peer), or out of the Socket if via is nil. The caller
// keeps via open while the conn sends through it.
func (c *CircuitConn) SendVia(addr *net.UDPAddr, via net.PacketConn) {
	c.to.Store(&circuitTarget{addr: addr, via: via})
}

// Target returns where the conn sends its frames.
func (c *CircuitConn) Target() *net.UDPAddr { return c.to.Load().addr }

// Deliver hands the payload of a received frame to the reader (it is
// copied). It reports false if the payload was dropped: the reader fell
// behind, or the conn is closed.
func (c *CircuitConn) Deliver(payload []byte) bool {
	if len(payload) > MaxPacket {
		c.dropped.Add(1)
		return false
	}
	b := getBuf(len(payload))
	copy(b, payload)
	select {
	case <-c.done:
		putBuf(b)
		return false
	default:
	}
	select {
	case c.in <- b:
		return true
	default:
		putBuf(b)
		c.dropped.Add(1)
		return false
	}
}

// Dropped returns the number of received datagrams dropped because the
// reader fell behind.
func (c *CircuitConn) Dropped() uint64 { return c.dropped.Load() }

// ReadFrom returns the next datagram of the circuit; its source is the
// relay's address.
func (c *CircuitConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		c.mu.Lock()
		dl, wake := c.deadline, c.wake
		c.mu.Unlock()
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
		var n int
		var err error
		again := false
		select {
		case pkt := <-c.in:
			n = copy(b, pkt)
			putBuf(pkt)
		case <-c.done:
			err = net.ErrClosed
		case <-expired:
			err = os.ErrDeadlineExceeded
		case <-wake:
			again = true
		}
		if timer != nil {
			timer.Stop()
		}
		if err != nil {
			return 0, nil, err
		}
		if !again {
			return n, c.relay, nil
		}
	}
}

// WriteTo sends b in a Circuit frame, whatever addr says.
func (c *CircuitConn) WriteTo(b []byte, _ net.Addr) (int, error) {
	select {
	case <-c.done:
		return 0, net.ErrClosed
	default:
	}
	if len(b) > wire.MaxCircuitPayload {
		return 0, errTooLarge
	}
	buf := getBuf(0)
	f := wire.AppendCircuitFrame(buf, c.id, b)
	var err error
	if t := c.to.Load(); t.via != nil {
		_, err = t.via.WriteTo(f, t.addr)
	} else {
		err = c.sock.WriteTo(f, t.addr)
	}
	putBuf(f)
	if err != nil {
		return 0, err
	}
	return len(b), nil
}

// Close closes the conn; a blocked ReadFrom returns net.ErrClosed.
func (c *CircuitConn) Close() error {
	c.once.Do(func() {
		close(c.done)
		if c.onClose != nil {
			c.onClose()
		}
	})
	return nil
}

// Done is closed when the conn is closed.
func (c *CircuitConn) Done() <-chan struct{} { return c.done }

// LocalAddr is the node's socket address.
func (c *CircuitConn) LocalAddr() net.Addr { return c.sock.LocalAddr() }

// SetDeadline sets the read deadline; writes do not block.
func (c *CircuitConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

// SetReadDeadline sets the time ReadFrom gives up at; it reaches a ReadFrom
// already blocked.
func (c *CircuitConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	close(c.wake)
	c.wake = make(chan struct{})
	c.mu.Unlock()
	return nil
}

// SetWriteDeadline does nothing: writes do not block.
func (c *CircuitConn) SetWriteDeadline(time.Time) error { return nil }

// errTooLarge is ErrDatagramTooLarge as quic-go knows a datagram too large
// for the path (EMSGSIZE): a path MTU probe past a Circuit frame's payload
// is lost, not an error that ends the connection.
var errTooLarge = fmt.Errorf("%w: %w", ErrDatagramTooLarge, syscall.EMSGSIZE)

// QUICConn returns the conn for a quic.Transport to run on (always the
// same): c itself, or,
// if the node's socket is a *net.UDPConn, c with that socket's SyscallConn.
// quic-go uses it to set DF (don't fragment) on the socket the conn's
// frames leave from (the node's socket already has it, set by its own QUIC
// transport), and then runs path MTU discovery over the circuit: a QUIC
// packet that the path cannot carry in a Circuit frame, with its 9 bytes
// of header, is lost (or refused here, past wire.MaxCircuitPayload), and
// QUIC keeps to the largest that got through.
func (c *CircuitConn) QUICConn() net.PacketConn {
	return c.quic
}

// circuitDFConn is a CircuitConn with the SyscallConn of the node's socket.
type circuitDFConn struct {
	*CircuitConn
	uc *net.UDPConn
}

func (c *circuitDFConn) SyscallConn() (syscall.RawConn, error) { return c.uc.SyscallConn() }

// SetReadBuffer does nothing: the conn queues circuitQueue datagrams.
// (quic-go would warn about a connection that lacks it.)
func (c *CircuitConn) SetReadBuffer(int) error { return nil }

// SetWriteBuffer does nothing, as SetReadBuffer.
func (c *CircuitConn) SetWriteBuffer(int) error { return nil }
