package p2psock

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/lan"
)

// discoveryNode binds a loopback node with local discovery and no entry
// point, registered in dir.
func discoveryNode(t *testing.T, tn *testNet, dir, network string, multicast bool) *Node {
	t.Helper()
	return tn.add(Config{ListenAddr: "127.0.0.1:0", Network: network, LocalDiscovery: true,
		discoveryDir: dir, MachineOnlyDiscovery: !multicast, Logger: testLogger(t)})
}

func knows(a, b *Node) bool { return slices.Contains(a.Contacts(), b.ID()) }

// TestLoopbackLocalDiscovery: nodes with no entry point find each other on
// this machine through the registry: the second joins the first, and
// exchanges a message and a stream with it; a node of another network is not
// joined; the registry entry goes away on Close.
func TestLoopbackLocalDiscovery(t *testing.T) {
	dir := t.TempDir()
	tn := newEmptyNet(t)
	a := discoveryNode(t, tn, dir, "disc-test", false)
	other := discoveryNode(t, tn, dir, "another-network", false)
	b := discoveryNode(t, tn, dir, "disc-test", false)
	require.True(t, knows(b, a), "b joined through a")
	require.False(t, knows(b, other))
	require.Empty(t, other.Contacts())

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, b.SendTo(ctx, []byte("found you"), a.ID()))
	tn.expect([]byte("found you"))
	ca, cb := connectPair(t, ctx, b, a)
	ca.Close()
	cb.Close()

	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, ents, 2, "one directory per network")
	require.NoError(t, b.Close())
	require.Empty(t, a.disc.Peers(), "b's entry is gone")
}

// TestLoopbackLocalDiscoveryMerge: two nodes that each started a network of
// their own (they registered after each other's scan) meet when a rescan of
// the registry reveals the other, and their networks merge.
func TestLoopbackLocalDiscoveryMerge(t *testing.T) {
	tn := newEmptyNet(t)
	a := discoveryNode(t, tn, t.TempDir(), "merge-test", false)
	dirB := t.TempDir()
	b := discoveryNode(t, tn, dirB, "merge-test", false)
	require.Empty(t, a.Contacts())
	require.Empty(t, b.Contacts())
	// a appears in b's registry after b's Bind.
	reg, err := lan.Register(dirB, "merge-test", lan.LocalAddrPort(a.UDPAddr()))
	require.NoError(t, err)
	defer reg.Close()
	require.Eventually(t, func() bool { return knows(a, b) && knows(b, a) },
		3*lan.RescanEvery, 20*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, a.SendTo(ctx, []byte("merged"), b.ID()))
	tn.expect([]byte("merged"))
}

// TestNetnsLANDiscovery: nodes that do not share a registry find each other
// through multicast announcements. It needs a network namespace of its own
// with multicast on the loopback interface, which .ci/run makes (as root)
// and runs it in with P2PSOCK_NETNS_LAN=1; elsewhere it is skipped, since it
// would send multicast on the host's LAN.
func TestNetnsLANDiscovery(t *testing.T) {
	if os.Getenv("P2PSOCK_NETNS_LAN") == "" {
		t.Skip("needs the network namespace .ci/run makes (P2PSOCK_NETNS_LAN=1)")
	}
	tn := newEmptyNet(t)
	a := discoveryNode(t, tn, t.TempDir(), "lan-test", true)
	start := time.Now()
	b := discoveryNode(t, tn, t.TempDir(), "lan-test", true)
	require.True(t, knows(b, a), "b joined through a's answer to its announcement")
	t.Logf("b found a in %v", time.Since(start))
	c := discoveryNode(t, tn, t.TempDir(), "lan-test", true)
	require.True(t, knows(c, a) || knows(c, b))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, c.SendTo(ctx, []byte("over the LAN"), a.ID()))
	tn.expect([]byte("over the LAN"))
}
