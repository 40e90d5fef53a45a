package p2psock

import (
	"context"
	"crypto/rand"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
)

// TestLoopbackNotBoundAndClosedErrors: before Bind, the calls that need a
// bound node fail with a *net.OpError (Net "p2p", the call's Op) that wraps
// ErrNotBound; after Close, they and Bind and Accept fail with one that
// wraps net.ErrClosed.
func TestLoopbackNotBoundAndClosedErrors(t *testing.T) {
	testnet.CheckLeaks(t)
	n, err := NewNode(Config{ListenAddr: "127.0.0.1:0"})
	require.NoError(t, err)
	t.Cleanup(func() { n.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var peer ID
	rand.Read(peer[:])

	type call struct {
		op string
		do func() error
	}
	calls := []call{
		{"dial", func() error { _, err := n.Connect(ctx, peer); return err }},
		{"send", func() error { return n.SendTo(ctx, []byte("x"), peer) }},
		{"send", func() error { return n.SendToKey(ctx, []byte("x"), peer.Key()) }},
		{"lookup", func() error { _, err := n.Lookup(ctx, peer.Key()); return err }},
		{"join", func() error { _, err := n.Join(ctx, "a group"); return err }},
		{"broadcast", func() error { return n.Broadcast(ctx, []byte("x")) }},
		{"send", func() error { return n.Group("a group").Send(ctx, []byte("x")) }},
		{"checknat", func() error { _, err := n.CheckNAT(ctx); return err }},
	}
	check := func(t *testing.T, calls []call, want error) {
		for _, c := range calls {
			err := c.do()
			var oe *net.OpError
			require.True(t, errors.As(err, &oe), "%s: %T %v, want a *net.OpError", c.op, err, err)
			require.Equal(t, c.op, oe.Op)
			require.Equal(t, "p2p", oe.Net)
			require.ErrorIs(t, err, want, c.op)
		}
	}
	t.Run("before Bind", func(t *testing.T) { check(t, calls, ErrNotBound) })

	require.NoError(t, n.Bind(ctx)) // a network of its own
	require.NoError(t, n.Close())
	calls = append(calls,
		call{"bind", func() error { return n.Bind(ctx) }},
		call{"accept", func() error { _, err := n.AcceptContext(ctx); return err }},
		call{"accept", func() error { _, err := n.Accept(); return err }},
	)
	t.Run("after Close", func(t *testing.T) { check(t, calls, net.ErrClosed) })
}
