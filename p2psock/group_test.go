package p2psock

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/group"
)

// The group service's behaviour (trees, pruning, multicast, anycast,
// broadcast, NATs) is tested in package group. This is the GroupSocket's
// own contract: the errors the front door promises.
func TestLoopbackGroupSocketErrors(t *testing.T) {
	tn := newLoopbackNet(t, 2, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, b := tn.nodes[0], tn.nodes[1]

	// Too large: ErrMessageTooLarge, for each of the three verbs.
	big := make([]byte, group.MaxData+1)
	require.ErrorIs(t, a.Group("g").Send(ctx, big), ErrMessageTooLarge)
	require.ErrorIs(t, a.Group("g").SendAny(ctx, big), ErrMessageTooLarge)
	require.ErrorIs(t, a.Broadcast(ctx, big), ErrMessageTooLarge)

	// Not a member, an empty group.
	_, err := a.Group("g").Recv(ctx)
	require.ErrorIs(t, err, ErrNotMember)
	require.ErrorIs(t, a.Group("nobody").SendAny(ctx, []byte("?")), ErrEmptyGroup)

	// Recv on a closed socket: a *net.OpError matching net.ErrClosed.
	g, err := a.Join(ctx, "g")
	require.NoError(t, err)
	require.NoError(t, g.Close())
	_, err = g.Recv(ctx)
	var op *net.OpError
	require.ErrorAs(t, err, &op)
	require.Equal(t, "recv", op.Op)
	require.ErrorIs(t, err, net.ErrClosed)

	// After Node.Close: Recv of a socket still open, Join, Send.
	g, err = b.Join(ctx, "g")
	require.NoError(t, err)
	require.NoError(t, b.Close())
	_, err = g.Recv(ctx)
	require.ErrorAs(t, err, &op)
	require.ErrorIs(t, err, net.ErrClosed)
	_, err = b.Join(ctx, "g")
	require.ErrorIs(t, err, net.ErrClosed)
	require.ErrorIs(t, b.Group("g").Send(ctx, []byte("x")), net.ErrClosed)
}
