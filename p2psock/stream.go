package p2psock

import (
	"context"
	"errors"
	"net"

	"github.com/p2psock/p2psock/internal/streams"
)

var _ net.Listener = (*Node)(nil)

// Connect opens a stream to the node with ID remote. The first Connect to a
// peer finds a path with ICE (signalled through the overlay; a TURN relay if
// no direct path works) and sets up a QUIC connection whose TLS handshake
// proves the peer holds remote's key; later Connects to the same peer, and
// Connects the peer makes, open further streams on that one connection. If
// both nodes connect to each other at once, they end up with one connection.
//
// Connect fails with ErrUnreachable when no node with ID remote answers in
// the network, ErrNoPath when ICE found no working path, ErrPeerIdentity when
// the peer could not prove its ID, ErrRefused when the peer refused, ErrNotBound
// before Bind, net.ErrClosed after Close, and with the context's error (a
// net.Error whose Timeout is true for a deadline) when ctx ends first; when
// ctx has no deadline, Config.ConnectTimeout bounds it. Errors are
// *net.OpError.
func (n *Node) Connect(ctx context.Context, remote ID) (*Conn, error) {
	if err := n.state(); err != nil {
		return nil, n.dialErr(remote, err)
	}
	if remote == n.ID() {
		return nil, n.dialErr(remote, errors.New("p2psock: connect to self"))
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.cfg.ConnectTimeout)
		defer cancel()
	}
	s, err := n.eng.Dial(ctx, remote)
	if err != nil {
		return nil, n.dialErr(remote, err)
	}
	return newConn(s, n.ID()), nil
}

func (n *Node) dialErr(remote ID, err error) error {
	return &net.OpError{Op: "dial", Net: "p2p", Source: n.Addr(), Addr: &Addr{remote}, Err: err}
}

// Accept waits for the next stream a peer opened to this node with Connect.
// It implements net.Listener; the net.Conn is a *Conn. After Close it fails
// with net.ErrClosed.
func (n *Node) Accept() (net.Conn, error) {
	c, err := n.AcceptContext(context.Background())
	if err != nil {
		return nil, err
	}
	return c, nil
}

// AcceptContext is Accept with a context: it also fails, with the context's
// error, when ctx ends first. Errors are *net.OpError.
func (n *Node) AcceptContext(ctx context.Context) (*Conn, error) {
	s, err := n.eng.Accept(ctx)
	if err != nil {
		return nil, &net.OpError{Op: "accept", Net: "p2p", Addr: n.Addr(), Err: err}
	}
	return newConn(s, n.ID()), nil
}

// Addr returns this node's *Addr (net.Listener's Addr).
func (n *Node) Addr() net.Addr { return &Addr{n.ID()} }

// newConn wraps an engine stream as the front door's Conn.
func newConn(s *streams.Stream, local ID) *Conn {
	return &Conn{s: s, local: &Addr{local}, remote: &Addr{s.Peer()}}
}
