package benchnet

import (
	"net"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
)

// A network Build made, closed by Close, leaves no goroutine behind and
// every node closed, so that a bench command exits once it has printed.
func TestLoopbackBuildThenCloseLeavesNothing(t *testing.T) {
	testnet.CheckLeaks(t)
	nodes, _, err := Build(20, 4, nil, nil)
	require.NoError(t, err)
	for _, nd := range nodes {
		require.Positive(t, nd.Info().Contacts, "precondition: every node joined")
	}
	Close(nodes)
	for _, nd := range nodes {
		require.NoError(t, nd.Close(), "Close is idempotent")
		_, err := nd.RecvFrom(t.Context())
		require.ErrorIs(t, err, net.ErrClosed, "a closed node's calls fail")
	}
}
