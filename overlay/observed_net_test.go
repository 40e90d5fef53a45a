package overlay_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/simnet"
	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/internal/testnet/ovnet"
	"github.com/p2psock/p2psock/overlay"
)

// TestVnetLANNeighbourKeepsNATedNodePrivate: two nodes on one machine behind
// a port-restricted NAT, both joined through a public node, meet on their
// LAN address (as two p2pcats that local discovery found do). Each then
// hears its LAN address from the other, which must not make it believe it
// is public there: both still report the NAT's address, and not public, so
// that nodes far away do not try to reach them straight at their NAT's
// address (and give up on them), and they keep the NAT's mapping open.
func TestVnetLANNeighbourKeepsNATedNodePrivate(t *testing.T) {
	testnet.CheckLeaks(t)
	sn, err := simnet.New()
	require.NoError(t, err)
	t.Cleanup(func() { sn.Close() }) // after the nodes have closed
	pub, err := sn.AddHost(simnet.Public)
	require.NoError(t, err)
	lan, err := sn.AddHost(simnet.PortRestricted)
	require.NoError(t, err)
	natIP, ok := netip.AddrFromSlice(lan.PublicIP().To4())
	require.True(t, ok)
	cfg := overlay.Config{Logger: testnet.Logger(t)}
	open := func(h *simnet.Host, port int, entries []string) *ovnet.Node {
		t.Helper()
		pc, err := h.ListenUDP(port)
		require.NoError(t, err)
		nd, err := ovnet.Open(cfg, "", pc, nil)
		require.NoError(t, err)
		t.Cleanup(func() { nd.Close() })
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		require.NoError(t, nd.Join(ctx, entries, len(entries) > 0))
		return nd
	}
	p := open(pub, 4000, nil)
	a1 := open(lan, 4001, []string{p.Addr()})
	a2 := open(lan, 4002, []string{p.Addr()})
	private := func(nd *ovnet.Node, when string) {
		t.Helper()
		inf := nd.Info()
		require.False(t, inf.Public, "%s: %v believes it is public at %v", when, nd.ID(), inf.Observed)
		require.Equal(t, natIP, inf.Observed.Addr(), "%s: %v's observed address", when, nd.ID())
	}
	private(a1, "joined")
	private(a2, "joined")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, a2.Meet(ctx, a1.Addr())) // a1's Pong told a2 its LAN address
	private(a2, "met a1 on the LAN")
	a2Addr := netip.MustParseAddrPort(a2.Addr())
	testnet.Eventually(t, 10*time.Second, "a1 verifies a2 on the LAN (a2's Pong tells a1 its LAN address)", func() bool {
		for _, c := range a1.Table() {
			if c.ID == a2.ID() && c.Addr == a2Addr {
				return true
			}
		}
		return false
	})
	private(a1, "verified a2 on the LAN")
}
