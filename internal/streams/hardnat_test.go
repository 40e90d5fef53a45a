package streams

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/internal/wire"
)

// TestHardRoleFor: a node opens extra ports only when its NAT is hard and
// the peer's is not, toward the address the peer announced and the relay
// sees it at; it sprays only when the peer's NAT is hard, at the IP the
// peer announced and the relay sees it at. Otherwise it does neither.
func TestHardRoleFor(t *testing.T) {
	easy := netip.MustParseAddrPort("198.51.100.2:4100")
	hard := netip.MustParseAddrPort("203.0.113.9:0")
	for name, tc := range map[string]struct {
		selfHard bool
		pn       peerNAT
		seen     netip.AddrPort
		want     hardRole
	}{
		"hard facing easy":             {true, peerNAT{addr: easy}, easy, hardOpen},
		"hard facing easy, mapped v4":  {true, peerNAT{addr: easy}, netip.AddrPortFrom(netip.AddrFrom16(easy.Addr().As16()), easy.Port()), hardOpen},
		"easy facing hard":             {false, peerNAT{hard: true, addr: hard}, netip.MustParseAddrPort("203.0.113.9:61234"), hardSpray},
		"both hard":                    {true, peerNAT{hard: true, addr: hard}, netip.MustParseAddrPort("203.0.113.9:61234"), hardNone},
		"both easy":                    {false, peerNAT{addr: easy}, easy, hardNone},
		"no announced address":         {true, peerNAT{}, easy, hardNone},
		"relay has not seen the peer":  {true, peerNAT{addr: easy}, netip.AddrPort{}, hardNone},
		"announced port not the relay": {true, peerNAT{addr: easy}, netip.MustParseAddrPort("198.51.100.2:4101"), hardNone},
		"announced IP not the relay's": {false, peerNAT{hard: true, addr: hard}, netip.MustParseAddrPort("192.0.2.7:61234"), hardNone},
	} {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.want, hardRoleFor(tc.selfHard, tc.pn, tc.seen))
		})
	}
}

// TestPeerNATOf: the HardNAT flag and the announced address of an Offer
// or Answer; an address without its flag is not taken.
func TestPeerNATOf(t *testing.T) {
	a := netip.MustParseAddrPort("198.51.100.2:4100")
	require.Equal(t, peerNAT{hard: true, addr: a},
		peerNATOf(wire.CircuitMsg{Flags: wire.CircuitFlagHardNAT | wire.CircuitFlagAddr, Addr: a}))
	require.Equal(t, peerNAT{}, peerNATOf(wire.CircuitMsg{Addr: a}))
}

// TestSprayPorts: a round's probes go to distinct ports a NAT maps to, as
// many as asked and no more than exist.
func TestSprayPorts(t *testing.T) {
	ports := sprayPorts(hardSprayProbes)
	require.Len(t, ports, hardSprayProbes)
	seen := map[uint16]bool{}
	for _, p := range ports {
		require.GreaterOrEqual(t, p, uint16(hardPortMin))
		require.False(t, seen[p], "port %d twice", p)
		seen[p] = true
	}
	require.Len(t, sprayPorts(1<<20), 65536-hardPortMin, "never more than the ports there are")
}

// TestHardRoundOdds: with hardPorts mappings open among the ports a NAT
// maps to, hardSprayProbes distinct random probes miss them all with a
// probability under 0.1 %: the product over the probes of the chance that
// each misses.
func TestHardRoundOdds(t *testing.T) {
	const span = 65536 - hardPortMin
	miss := 1.0
	for i := range hardSprayProbes {
		miss *= float64(span-hardPorts-i) / float64(span-i)
	}
	t.Logf("a round misses with probability %.5f", miss)
	require.Less(t, miss, 0.001)
	// The bounds of a round: packets and time.
	require.LessOrEqual(t, hardSprayProbes/hardSprayBatch*hardSprayPace, 2*time.Second)
	require.Less(t, hardHold+hardSprayDelay, hardRoundGap)
}

// TestLoopbackHardNATExtraPort: on a circuit between a node that says its
// NAT maps per destination (b) and one that does not (a), with the plain
// probes off, b opens its extra ports toward a's announced address, a
// answers the one probe of each that reaches it (loopback has no NAT to
// drop them), and the connection moves to a direct path that leaves b
// through one of its extra ports: the bytes written before and after the
// move arrive intact, b's path names that port, and b opened hardPorts.
func TestLoopbackHardNATExtraPort(t *testing.T) {
	nodes := newNet(t, 3, nil)
	_, a, b := nodes[0], nodes[1], nodes[2]
	b.eng.hardNAT = func() bool { return true }
	a.eng.noPlainProbes, b.eng.noPlainProbes = true, true
	a.eng.sprayPorts = func(int) []uint16 { return nil } // no probes to random local ports
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sa, sb := circuitPair(t, ctx, a, b)
	require.True(t, sa.Path().Relayed)

	e := startHalfEcho(t, ctx, sa, sb, 1<<20)
	testnet.Eventually(t, 20*time.Second, "both ends to go direct", func() bool {
		return !sa.Path().Relayed && !sb.Path().Relayed
	})
	e.writeRest()
	require.Equal(t, a.Addr(), sb.Path().Remote.String())
	require.NotEqual(t, b.Addr(), sb.Path().Local.String(), "b sends from an extra port")
	// Every extra port reached a (no NAT here): a settles on the one b
	// kept.
	testnet.Eventually(t, 10*time.Second, "a to send to b's extra port", func() bool {
		return sa.Path().Remote.String() == sb.Path().Local.String()
	})
	e.check()
	require.Equal(t, uint64(hardPorts), b.eng.Counters().HardPortsOpened)
	require.Zero(t, a.eng.Counters().HardPortsOpened)
}
