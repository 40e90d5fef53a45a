package p2psock

import (
	"context"
	"errors"
	"net"
	"sync"

	"github.com/p2psock/p2psock/internal/streams"
)

// Listener is a service's stream listener: it accepts the streams peers
// open to the service with Service.Dial. It satisfies net.Listener (so
// http.Serve and other servers take it); its Accept gives *Conns, which
// travel on the same QUIC connection per peer as the node's other streams.
// Its methods are safe for concurrent use.
type Listener struct {
	s      *Service
	tag    streams.ServiceTag
	life   context.Context // ends at Close
	cancel context.CancelFunc
	once   sync.Once
}

var _ net.Listener = (*Listener)(nil)

// tag is what the engine calls the service's streams: the name's hash,
// zero for the default service.
func (s *Service) tag() streams.ServiceTag {
	if s.name == "" {
		return streams.ServiceTag{}
	}
	return streams.ServiceTag(s.hash)
}

// Listen opens the service's stream listener. A service has one at a time:
// another fails with ErrInUse until the first is closed. Until Listen (and
// after the Listener's Close), streams peers open to the service fail at
// once with ErrNoService. For the default service ("") the Listener takes
// the streams Node.Accept takes, which are always accepted; the two
// compete for them.
func (s *Service) Listen() (*Listener, error) {
	if err := s.state("listen"); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, s.n.opErr("listen", net.ErrClosed)
	}
	if s.ln != nil {
		return nil, s.n.opErr("listen", ErrInUse)
	}
	l := &Listener{s: s, tag: s.tag()}
	if l.tag != (streams.ServiceTag{}) && !s.n.eng.ListenService(l.tag) {
		return nil, s.n.opErr("listen", net.ErrClosed)
	}
	l.life, l.cancel = context.WithCancel(s.n.life)
	s.ln = l
	return l, nil
}

// Accept waits for the next stream a peer opened to the service. It
// implements net.Listener; the net.Conn is a *Conn. After Close (of the
// Listener, its Service or the Node) it fails with net.ErrClosed.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.AcceptContext(context.Background())
	if err != nil {
		return nil, err
	}
	return c, nil
}

// AcceptContext is Accept with a context: it also fails, with the context's
// error, when ctx ends first. Errors are *net.OpError.
func (l *Listener) AcceptContext(ctx context.Context) (*Conn, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(l.life, cancel)
	defer stop()
	st, err := l.s.n.eng.AcceptService(ctx, l.tag)
	if err != nil {
		if l.life.Err() != nil && !errors.Is(err, net.ErrClosed) {
			err = net.ErrClosed
		}
		return nil, &net.OpError{Op: "accept", Net: "p2p", Addr: l.Addr(), Err: err}
	}
	return newConn(st, l.s.n.ID()), nil
}

// Close stops the listener: pending Accepts fail with net.ErrClosed,
// streams waiting to be accepted are reset, and peers' later streams to the
// service fail with ErrNoService. Streams already accepted stay open. Close
// is idempotent.
func (l *Listener) Close() error {
	l.once.Do(func() {
		if l.tag != (streams.ServiceTag{}) {
			l.s.n.eng.CloseService(l.tag)
		}
		l.cancel()
		l.s.mu.Lock()
		if l.s.ln == l {
			l.s.ln = nil
		}
		l.s.mu.Unlock()
	})
	return nil
}

// Addr returns this node's *Addr.
func (l *Listener) Addr() net.Addr { return l.s.n.Addr() }

// Dial opens a stream to the service on the node with ID remote, on the
// QUIC connection this node keeps with that peer (set up as Node.Connect
// does if there is none), and returns once the peer has taken it. It fails
// at once with ErrNoService if the peer's service is not listening (no
// Listen, or a node that does not offer it), with ErrRefused if the peer
// had no room for the stream, and otherwise as Node.Connect fails. For the
// default service ("") it is Node.Connect. Errors are *net.OpError.
func (s *Service) Dial(ctx context.Context, remote ID) (*Conn, error) {
	if s.name == "" {
		return s.n.Connect(ctx, remote)
	}
	if err := s.state("dial"); err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) {
			err = oe.Err
		}
		return nil, s.n.dialErr(remote, err)
	}
	if remote == s.n.ID() {
		return nil, s.n.dialErr(remote, errors.New("p2psock: connect to self"))
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.n.cfg.ConnectTimeout)
		defer cancel()
	}
	st, err := s.n.eng.DialService(ctx, remote, s.tag())
	if err != nil {
		return nil, s.n.dialErr(remote, err)
	}
	return newConn(st, s.n.ID()), nil
}
