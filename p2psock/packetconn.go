package p2psock

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"time"

	"github.com/p2psock/p2psock/internal/wire"
)

// packetQueue is the number of datagrams a PacketConn holds for ReadFrom;
// past it, arriving datagrams are dropped (Info's Services.QueueFull).
const packetQueue = 256

// PacketConn is a service's datagram socket: a net.PacketConn whose
// addresses are *Addr (node IDs). A datagram of up to MaxMessageSize bytes
// travels as one routed message of the overlay (sealed to the peer, and
// acknowledged end to end: WriteTo returns once the peer's node took it,
// or fails). Datagrams are not ordered, and a peer whose queue is full
// drops them, as UDP does. Its methods are safe for concurrent use.
type PacketConn struct {
	s     *Service
	queue chan Message
	done  chan struct{}
	once  sync.Once

	rd, wd deadline
}

var _ net.PacketConn = (*PacketConn)(nil)

// ListenPacket opens the service's packet conn: datagrams sent to the
// service on this node (by WriteTo on a peer's PacketConn of the same
// service) are read with ReadFrom. A service has one at a time: another
// fails with ErrInUse until the first is closed.
// Without one, peers' datagrams to the service fail with ErrNoService.
func (s *Service) ListenPacket() (*PacketConn, error) {
	if err := s.state("listen"); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pc != nil {
		return nil, s.n.opErr("listen", ErrInUse)
	}
	pc := &PacketConn{s: s, queue: make(chan Message, packetQueue), done: make(chan struct{})}
	s.pc = pc
	return pc, nil
}

// deliver queues a datagram; false if the queue is full or pc closed.
func (pc *PacketConn) deliver(m Message) bool {
	select {
	case <-pc.done:
		return false
	default:
	}
	select {
	case pc.queue <- m:
		return true
	default:
		return false
	}
}

// ReadFrom reads the next datagram into p and returns its length and its
// sender's *Addr; a datagram longer than p is truncated. It fails with
// net.ErrClosed after Close and with os.ErrDeadlineExceeded (a timeout
// net.Error) past the read deadline; errors are *net.OpError.
func (pc *PacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	select {
	case <-pc.done:
		return 0, nil, pc.opErr("read", nil, net.ErrClosed)
	default:
	}
	select {
	case m := <-pc.queue:
		return copy(p, m.Data), &Addr{m.From}, nil
	case <-pc.done:
		return 0, nil, pc.opErr("read", nil, net.ErrClosed)
	case <-pc.rd.wait():
		return 0, nil, pc.opErr("read", nil, os.ErrDeadlineExceeded)
	}
}

// WriteTo sends p to the service on the node addr names (an *Addr). Where
// this node has a QUIC connection to that node and p fits in one QUIC
// datagram (about 1,100 bytes), p goes as one, unacknowledged: WriteTo
// returns once it is queued, and p may be lost, as UDP loses it (a peer
// without a packet conn on the service drops it and counts it). Otherwise
// p travels over the overlay and WriteTo returns once that node took it
// (packet_path.go; Config.DatagramsOverOverlay always takes this path).
// It fails with ErrNoService if that node has no packet conn open on the
// service (over the overlay only), ErrUnreachable if it could not be
// reached, os.ErrDeadlineExceeded past the write deadline, net.ErrClosed
// after Close, and ErrMessageTooLarge above MaxMessageSize bytes; errors
// are *net.OpError.
func (pc *PacketConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	a, ok := addr.(*Addr)
	if !ok {
		return 0, pc.opErr("write", addr, errors.New("p2psock: address is not a *p2psock.Addr"))
	}
	return pc.write(p, a.ID.Key(), false, addr)
}

// WriteToKey sends p to the service on the live node whose ID is closest
// to key, always over the overlay (acknowledged); errors are as for
// WriteTo.
func (pc *PacketConn) WriteToKey(p []byte, key Key) (int, error) {
	return pc.write(p, key, true, nil)
}

func (pc *PacketConn) write(p []byte, dest Key, byKey bool, addr net.Addr) (int, error) {
	select {
	case <-pc.done:
		return 0, pc.opErr("write", addr, net.ErrClosed)
	default:
	}
	if pc.wd.expired() {
		return 0, pc.opErr("write", addr, os.ErrDeadlineExceeded)
	}
	if err := pc.s.state("write"); err != nil {
		return 0, err
	}
	if !byKey && pc.s.sendQUICDatagram(p, ID(dest)) {
		return len(p), nil
	}
	ctx, cancel := context.WithCancel(pc.s.n.life)
	defer cancel()
	go func() {
		select {
		case <-pc.wd.wait():
			cancel()
		case <-pc.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	_, _, err := pc.s.send(ctx, "write", wire.NamedPacket, p, dest, byKey)
	if err != nil {
		select {
		case <-pc.done:
			err = net.ErrClosed
		default:
			if pc.wd.expired() {
				err = os.ErrDeadlineExceeded
			}
		}
		var op *net.OpError
		if errors.As(err, &op) {
			return 0, err
		}
		return 0, pc.opErr("write", addr, err)
	}
	return len(p), nil
}

// Close closes the packet conn: pending and later calls fail with
// net.ErrClosed, and peers' datagrams to the service fail with
// ErrNoService. Close is idempotent.
func (pc *PacketConn) Close() error {
	pc.once.Do(func() {
		close(pc.done)
		pc.s.mu.Lock()
		if pc.s.pc == pc {
			pc.s.pc = nil
		}
		pc.s.mu.Unlock()
	})
	return nil
}

// LocalAddr returns this node's *Addr.
func (pc *PacketConn) LocalAddr() net.Addr { return &Addr{pc.s.n.ID()} }

// SetDeadline sets the read and write deadlines, as net.PacketConn
// describes: a deadline reached also ends calls already blocked.
func (pc *PacketConn) SetDeadline(t time.Time) error {
	pc.rd.set(t)
	pc.wd.set(t)
	return nil
}

// SetReadDeadline sets the time ReadFrom fails at with a timeout error.
func (pc *PacketConn) SetReadDeadline(t time.Time) error { pc.rd.set(t); return nil }

// SetWriteDeadline sets the time WriteTo fails at with a timeout error.
func (pc *PacketConn) SetWriteDeadline(t time.Time) error { pc.wd.set(t); return nil }

func (pc *PacketConn) opErr(op string, addr net.Addr, err error) error {
	return &net.OpError{Op: op, Net: "p2p", Source: pc.LocalAddr(), Addr: addr, Err: err}
}

// deadline is one direction's deadline, as net/pipe.go's pipeDeadline: a
// timer and a channel closed when the deadline passes, so that a new
// deadline reaches a call already blocked.
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	cancel chan struct{}
}

// set sets the deadline; the zero time means none.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cancel == nil {
		d.cancel = make(chan struct{})
	}
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer's function ran: wait for the close
	}
	d.timer = nil
	closed := isClosedChan(d.cancel)
	if t.IsZero() || time.Until(t) > 0 {
		if closed {
			d.cancel = make(chan struct{})
		}
		if !t.IsZero() {
			c := d.cancel
			d.timer = time.AfterFunc(time.Until(t), func() { close(c) })
		}
		return
	}
	if !closed {
		close(d.cancel)
	}
}

// wait returns a channel closed when the deadline passes.
func (d *deadline) wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cancel == nil {
		d.cancel = make(chan struct{})
	}
	return d.cancel
}

// expired reports whether the deadline passed.
func (d *deadline) expired() bool { return isClosedChan(d.wait()) }

func isClosedChan(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
