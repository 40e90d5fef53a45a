package overlay_test

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/internal/testnet/ovnet"
	"github.com/p2psock/p2psock/overlay"
)

// After a quarter of the nodes close, routing by key is exact again within
// 30 s.
func TestLoopbackChurnQuarterLeaves(t *testing.T) {
	testnet.CheckLeaks(t)
	tn := loopback(t, 40, overlay.Config{})
	for _, n := range tn.Nodes[len(tn.Nodes)-10:] {
		require.NoError(t, n.Close())
	}
	live := tn.Nodes[:len(tn.Nodes)-10]
	requireExactWithin(t, tn, live, "churn", 30*time.Second)
}

// Nodes that vanish without leaving (their socket just closes) are detected
// as dead, when a hop to them goes unanswered or their keepalives do: routing
// is exact again, and the live nodes drop them from their tables.
func TestLoopbackCrashedNodesAreRoutedAround(t *testing.T) {
	testnet.CheckLeaks(t)
	// Short keepalive timings: a silent contact is dead after about 6 s
	// rather than a minute.
	tn := loopback(t, 30, overlay.Config{KeepAlive: time.Second, Liveness: time.Second})
	crashed := tn.Nodes[len(tn.Nodes)-6:]
	live := tn.Nodes[:len(tn.Nodes)-6]
	require.Positive(t, contactsAmong(live, crashed), "precondition: the live nodes know the nodes that crash")
	for _, n := range crashed {
		require.NoError(t, n.Sock.Close()) // a crash: no leave message
	}
	requireExactWithin(t, tn, live, "crashes", 30*time.Second)
	testnet.Eventually(t, 20*time.Second, "the live nodes drop the crashed nodes from their tables", func() bool {
		return contactsAmong(live, crashed) == 0
	})
}

// contactsAmong counts the entries of nodes' routing tables that are IDs of
// the nodes of among.
func contactsAmong(nodes, among []*ovnet.Node) int {
	ids := make([]overlay.ID, len(among))
	for i, n := range among {
		ids[i] = n.ID()
	}
	count := 0
	for _, n := range nodes {
		for _, c := range n.Contacts() {
			if slices.Contains(ids, c) {
				count++
			}
		}
	}
	return count
}
