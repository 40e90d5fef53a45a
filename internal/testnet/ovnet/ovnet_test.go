package ovnet

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/overlay"
)

func TestLoopbackOverlayNodesRouteByKey(t *testing.T) {
	testnet.CheckLeaks(t)
	tn := Loopback(t, 8, overlay.Config{}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	to := tn.Nodes[5]
	require.NoError(t, tn.Nodes[2].Send(ctx, []byte("hi"), to.ID().Key(), false))
	m, err := to.Recv(ctx)
	require.NoError(t, err)
	require.Equal(t, []byte("hi"), m.Data)
	require.Equal(t, tn.Nodes[2].ID(), m.From)
}
