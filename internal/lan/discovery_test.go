package lan

import (
	"context"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
)

// TestDiscoveryRegistry: a Discovery registers the node, takes the other
// registered nodes of its network as entry points, and removes its entry at
// Close; Close is idempotent and leaves no goroutine behind.
func TestDiscoveryRegistry(t *testing.T) {
	testnet.CheckLeaks(t)
	dir := t.TempDir()
	start := func(port uint16) (*Discovery, []string) {
		return Start(Config{Network: "reg-test", ID: [32]byte{byte(port)}, Dir: dir, MachineOnly: true,
			Addr:     netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port),
			Announce: func([]byte) { t.Error("an announcement with MachineOnly") },
			Meet:     func(context.Context, string) error { return nil }})
	}
	a, entries := start(4001)
	require.Empty(t, entries)
	b, entries := start(4002)
	require.Equal(t, []string{"127.0.0.1:4001"}, entries)
	require.Equal(t, []string{"127.0.0.1:4002"}, a.Peers())
	b.Close()
	b.Close()
	require.Empty(t, a.Peers(), "b's entry is gone")
	a.Close()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, ents, 1, "the network's directory")
	left, err := os.ReadDir(dir + "/" + ents[0].Name())
	require.NoError(t, err)
	require.Empty(t, left)
}

// TestDiscoveryHidden: a hidden Discovery (a light client's) takes the
// registered nodes as entry points but does not register itself, and its
// Close leaves the others' entries.
func TestDiscoveryHidden(t *testing.T) {
	testnet.CheckLeaks(t)
	dir := t.TempDir()
	start := func(port uint16, hidden bool) (*Discovery, []string) {
		return Start(Config{Network: "hidden-test", ID: [32]byte{byte(port)}, Dir: dir, MachineOnly: true, Hidden: hidden,
			Addr:     netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port),
			Announce: func([]byte) { t.Error("an announcement with MachineOnly") },
			Meet:     func(context.Context, string) error { return nil }})
	}
	a, _ := start(4001, false)
	defer a.Close()
	c, entries := start(4002, true)
	require.Equal(t, []string{"127.0.0.1:4001"}, entries)
	require.Empty(t, a.Peers(), "the hidden node is not registered")
	c.Close()
	d, entries := start(4003, true)
	defer d.Close()
	require.Equal(t, []string{"127.0.0.1:4001"}, entries, "a's entry is left")
}

// TestDiscoveryMarkMet: an address is met once per retry period, and the
// memory of met addresses stays bounded.
func TestDiscoveryMarkMet(t *testing.T) {
	d := &Discovery{met: make(map[string]time.Time)}
	require.True(t, d.markMet("192.0.2.1:1"))
	require.False(t, d.markMet("192.0.2.1:1"), "met a moment ago")
	d.met["192.0.2.1:1"] = time.Now().Add(-retryAfter)
	require.True(t, d.markMet("192.0.2.1:1"), "met long ago")
	for i := range 2 * maxMet {
		d.met[netip.AddrPortFrom(netip.MustParseAddr("198.51.100.1"), uint16(i)).String()] = time.Now().Add(-retryAfter)
	}
	require.True(t, d.markMet("192.0.2.2:1"))
	require.LessOrEqual(t, len(d.met), 2, "old addresses are pruned when the memory is full")
}

func TestLocalAddrPort(t *testing.T) {
	require.Equal(t, netip.MustParseAddrPort("127.0.0.1:7"), LocalAddrPort(&net.UDPAddr{IP: net.IPv4zero, Port: 7}))
	require.Equal(t, netip.MustParseAddrPort("127.0.0.1:7"), LocalAddrPort(&net.UDPAddr{IP: net.IPv6unspecified, Port: 7}))
	require.Equal(t, netip.MustParseAddrPort("192.0.2.1:8"), LocalAddrPort(&net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 8}))
	require.False(t, LocalAddrPort(nil).IsValid())
}
