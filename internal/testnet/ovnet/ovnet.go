// Package ovnet starts overlay nodes without the front door, for the tests
// of the routing tier and the services built on it (package group, package
// dht): a Node is an overlay on its own UDP socket, on loopback or on a
// simulated network's PacketConn, bound into a network with package
// testnet's harness.
package ovnet

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/nat"
	"github.com/p2psock/p2psock/overlay"
)

// Node is an overlay on its own socket. Its Overlay field is an
// overlay.Host: group.New(nd.Overlay, cfg) and dht.New(nd.Overlay, cfg)
// start services on it.
type Node struct {
	*overlay.Overlay
	Sock *nat.Socket
	// Closers run at Close before the overlay closes (the services started
	// on the node), last added first.
	Closers []func() error
}

// Close closes the node's services, then its overlay and its socket, and
// returns the first error. A service the test closed already (its Close
// fails with net.ErrClosed) is not an error.
func (n *Node) Close() error {
	var err error
	for i := len(n.Closers) - 1; i >= 0; i-- {
		if cerr := n.Closers[i](); err == nil && !errors.Is(cerr, net.ErrClosed) {
			err = cerr
		}
	}
	n.Closers = nil
	if oerr := n.Overlay.Close(); err == nil {
		err = oerr
	}
	if serr := n.Sock.Close(); err == nil {
		err = serr
	}
	return err
}

// Bind joins the node into the network through entries (with none, it
// starts a network of its own), within 20 s; if that fails it closes the
// node.
func (n *Node) Bind(entries []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.Join(ctx, entries, len(entries) > 0); err != nil {
		n.Close()
		return err
	}
	return nil
}

// Addr is the node's socket address, for other nodes' entries.
func (n *Node) Addr() string { return n.Sock.LocalAddr().String() }

// Open opens a node on pc (nil: a new socket on addr) with cfg; a zero
// cfg.Difficulty is testnet.Difficulty, a zero cfg.Identity a fresh key with that
// work. attach, if not nil, runs before the overlay starts (services
// register their handlers there). The node sends nothing until Join.
func Open(cfg overlay.Config, addr string, pc net.PacketConn, attach func(*Node) error) (*Node, error) {
	if cfg.Difficulty == 0 {
		cfg.Difficulty = testnet.Difficulty
	}
	if cfg.Identity == nil {
		priv, err := overlay.NewIdentityKey(context.Background(), cfg.Difficulty)
		if err != nil {
			return nil, err
		}
		cfg.Identity = priv
	}
	var sock *nat.Socket
	if pc != nil {
		sock = nat.NewSocket(pc)
	} else {
		var err error
		if sock, err = nat.Listen(addr); err != nil {
			return nil, err
		}
	}
	ov, err := overlay.New(cfg, sock)
	if err != nil {
		sock.Close()
		return nil, err
	}
	n := &Node{Overlay: ov, Sock: sock}
	sock.Handle(wire.FirstType, wire.LastType, ov.HandlePacket)
	sock.Prefer(ov.Known)
	if attach != nil {
		if err := attach(n); err != nil {
			n.Close()
			return nil, err
		}
	}
	sock.Start()
	ov.Start()
	return n, nil
}

// Loopback builds a loopback network of n overlay nodes with cfg, one after
// another, each joined through a random earlier one; attach runs on each
// node before it starts. The nodes close at the end of the test.
func Loopback(t testing.TB, n int, cfg overlay.Config, attach func(i int, nd *Node) error) *testnet.Net[*Node] {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testnet.Logger(t)
	}
	start := func(i int, entries []string) (*Node, error) {
		var at func(*Node) error
		if attach != nil {
			at = func(nd *Node) error { return attach(i, nd) }
		}
		nd, err := Open(cfg, testnet.LoopbackAddr(i), nil, at)
		if err != nil {
			return nil, err
		}
		if err := nd.Bind(entries); err != nil {
			return nil, err
		}
		return nd, nil
	}
	return testnet.Start(t, n, start, (*Node).Addr)
}

// Closest returns the ID, among nodes', closest to key.
func Closest(nodes []*Node, key overlay.Key) overlay.ID {
	best := nodes[0].ID()
	for _, n := range nodes[1:] {
		if key.Closer(n.ID().Key(), best.Key()) {
			best = n.ID()
		}
	}
	return best
}
