package p2psock

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
)

// TestLoopbackPathKindDirect: on loopback every node's socket address is its
// own, so every link is direct: a connection's path on both ends, and every
// contact of every node's routing table (no NAT: none punched, none relayed).
func TestLoopbackPathKindDirect(t *testing.T) {
	tn := newLoopbackNet(t, 5, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ca, cb := connectPair(t, ctx, tn.nodes[1], tn.nodes[3])
	defer ca.Close()
	defer cb.Close()
	for _, p := range []PathInfo{ca.Path(), cb.Path()} {
		require.Equal(t, PathDirect, p.Kind, "%+v", p)
		require.False(t, p.Relayed)
	}
	require.Zero(t, tn.nodes[1].Info().Streams.PunchedConns)
	require.Zero(t, tn.nodes[1].Info().Streams.RelayedConns)
	// A node learns it is public from its first contact's answer; the
	// contacts that met it before learn it from its next answers (it pings
	// them all when its publicness changes).
	for i, nd := range tn.nodes {
		testnet.Eventually(t, 10*time.Second, fmt.Sprintf("node %d's contacts all direct", i), func() bool {
			inf := nd.Info()
			return inf.Contacts > 0 && inf.Relayed == 0 && inf.Punched == 0
		})
		for _, c := range nd.Overlay().Table() {
			require.Equal(t, PathDirect, c.Kind(), "node %d, contact %+v", i, c)
		}
	}
}
