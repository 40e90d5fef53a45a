package p2psock

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/simnet"
	"github.com/p2psock/p2psock/internal/testnet"
)

// needsRelay says whether two nodes behind NATs of kinds a and b need a
// relay: a symmetric NAT's mapping toward the peer is unpredictable, so only
// a peer that accepts packets from any port of a known IP (full cone) can
// take its packets directly.
func needsRelay(a, b simnet.Kind) bool {
	sym := func(k simnet.Kind) bool { return k == simnet.Symmetric }
	strict := func(k simnet.Kind) bool { return k == simnet.Symmetric || k == simnet.PortRestricted }
	return (sym(a) && strict(b)) || (sym(b) && strict(a))
}

// TestVnetConnectNATMatrix connects every pair of full-cone,
// port-restricted and symmetric NATs on the simulated Internet, through two
// public nodes that serve as entry points, STUN servers and TURN relays, and
// checks the path: direct, except where a symmetric NAT meets a
// port-restricted or symmetric one, which goes through a relay; and its kind
// on each end: punched toward a NATed peer, direct toward a public one. Then
// every node's routing table: public contacts direct, NATed ones punched or
// relayed (relayed where no direct path can exist).
func TestVnetConnectNATMatrix(t *testing.T) {
	kinds := []simnet.Kind{simnet.Public, simnet.Public,
		simnet.FullCone, simnet.FullCone, simnet.PortRestricted, simnet.PortRestricted,
		simnet.Symmetric, simnet.Symmetric}
	tn, _ := newVnetNet(t, kinds)
	pub0, pub1 := tn.nodes[0], tn.nodes[1]
	fc1, fc2, pr1, pr2, sym1, sym2 := tn.nodes[2], tn.nodes[3], tn.nodes[4], tn.nodes[5], tn.nodes[6], tn.nodes[7]
	kind := map[*Node]simnet.Kind{pub0: simnet.Public, pub1: simnet.Public, fc1: simnet.FullCone, fc2: simnet.FullCone,
		pr1: simnet.PortRestricted, pr2: simnet.PortRestricted, sym1: simnet.Symmetric, sym2: simnet.Symmetric}
	pairs := [][2]*Node{{fc1, fc2}, {fc1, pr1}, {sym1, fc2}, {pr1, pr2}, {pr2, sym1}, {sym1, sym2}, {pr1, pub1}, {pub0, fc2}}
	for _, p := range pairs {
		a, b := p[0], p[1]
		t.Run(fmt.Sprintf("%s-%s", kind[a], kind[b]), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			start := time.Now()
			ca, cb := connectPair(t, ctx, a, b)
			took := time.Since(start)
			defer ca.Close()
			defer cb.Close()
			want := needsRelay(kind[a], kind[b])
			require.Equal(t, want, ca.Path().Relayed, "connecting side: %+v", ca.Path())
			require.Equal(t, want, cb.Path().Relayed, "accepting side: %+v", cb.Path())
			require.Equal(t, wantKind(kind[b], want), ca.Path().Kind, "connecting side: %+v", ca.Path())
			require.Equal(t, wantKind(kind[a], want), cb.Path().Kind, "accepting side: %+v", cb.Path())
			msg := []byte("across " + kind[a].String() + " and " + kind[b].String())
			_, err := ca.Write(msg)
			require.NoError(t, err)
			require.NoError(t, ca.CloseWrite())
			got, err := io.ReadAll(cb)
			require.NoError(t, err)
			require.Equal(t, msg, got)
			t.Logf("%s -> %s: relayed=%v in %v", kind[a], kind[b], want, took)
		})
	}

	// The routing tables: a public contact is direct, a contact behind a NAT
	// punched, or relayed through another contact (and relayed wherever no
	// direct path exists).
	for nd, k := range kind {
		testnet.Eventually(t, 20*time.Second, fmt.Sprintf("the %s node's contacts have their kinds", k), func() bool {
			for _, c := range nd.Overlay().Table() {
				ck := simnet.Public
				for other, ok := range kind {
					if other.ID() == c.ID {
						ck = ok
					}
				}
				switch got := c.Kind(); {
				case ck == simnet.Public && got != PathDirect,
					ck != simnet.Public && got == PathDirect,
					needsRelay(k, ck) && got != PathRelayed:
					return false
				}
			}
			return true
		})
		inf := nd.Info()
		require.Equal(t, len(nd.Overlay().Table()), inf.Contacts)
		t.Logf("%s node: %d contacts, %d punched, %d relayed", k, inf.Contacts, inf.Punched, inf.Relayed)
	}
}

// wantKind is the kind of path a node sees toward a peer behind a NAT of
// kind peer: relayed when the pair needs a relay, else direct to a public
// peer and punched to a NATed one (its address is its NAT's mapping).
func wantKind(peer simnet.Kind, relayed bool) PathKind {
	switch {
	case relayed:
		return PathRelayed
	case peer == simnet.Public:
		return PathDirect
	}
	return PathPunched
}

// TestVnetConnectNoPathFailsFast: two nodes behind symmetric NATs in a
// network where no node relays (no TURN relay, and relaying off) cannot
// connect; Connect says so with
// ErrNoPath well before its deadline, and leaves no ICE session behind.
func TestVnetConnectNoPathFailsFast(t *testing.T) {
	kinds := []simnet.Kind{simnet.Public, simnet.Public, simnet.Symmetric, simnet.Symmetric}
	tn, _ := newVnetNet(t, kinds, func(_ int, c *Config) { c.RelayAddr, c.NoRelaying = "", true })
	a, b := tn.nodes[2], tn.nodes[3]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	_, err := a.Connect(ctx, b.ID())
	require.ErrorIs(t, err, ErrNoPath)
	require.NoError(t, ctx.Err(), "Connect used up its deadline")
	t.Logf("failed after %v", time.Since(start))
	for _, nd := range []*Node{a, b} {
		testnet.Eventually(t, 20*time.Second, "the ICE sessions to end",
			func() bool { return nd.Info().Streams.Sessions == 0 })
	}
}

// TestVnetConnectRelayFallback: when neither node knows its NAT maps per
// destination, the first ICE attempt (without relay candidates) finds no
// path between a symmetric and a port-restricted NAT; Connect retries with
// relay candidates on both sides and succeeds through a relay.
func TestVnetConnectRelayFallback(t *testing.T) {
	kinds := []simnet.Kind{simnet.Public, simnet.Public, simnet.Symmetric, simnet.PortRestricted}
	tn, _ := newVnetNet(t, kinds, func(_ int, c *Config) { c.ignoreNAT = true })
	a, b := tn.nodes[2], tn.nodes[3]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	before := a.Info().Streams.NoPath
	ca, cb := connectPair(t, ctx, a, b)
	require.True(t, ca.Path().Relayed)
	require.True(t, cb.Path().Relayed)
	require.Equal(t, before+1, a.Info().Streams.NoPath, "the first attempt failed")
	_, err := cb.Write([]byte("through the relay"))
	require.NoError(t, err)
	buf := make([]byte, len("through the relay"))
	_, err = io.ReadFull(ca, buf)
	require.NoError(t, err)
}

// TestVnetConnectRelayedOutlivesICETimers: a relayed connection between a
// symmetric and a port-restricted NAT keeps working well past the time
// after which an ICE agent whose checks go unanswered fails the path and
// drops its relay allocation (disconnected + failed: 5 s): round trips go on
// for 7 s.
func TestVnetConnectRelayedOutlivesICETimers(t *testing.T) {
	kinds := []simnet.Kind{simnet.Public, simnet.Public, simnet.PortRestricted, simnet.Symmetric}
	tn, _ := newVnetNet(t, kinds)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, p := range [][2]*Node{{tn.nodes[3], tn.nodes[2]}, {tn.nodes[2], tn.nodes[3]}} {
		ca, cb := connectPair(t, ctx, p[0], p[1])
		require.True(t, ca.Path().Relayed)
		go io.Copy(cb, cb)
		buf := make([]byte, 1)
		rounds := 0
		for end := time.Now().Add(7 * time.Second); time.Now().Before(end); rounds++ {
			require.NoError(t, ca.SetDeadline(time.Now().Add(3*time.Second)))
			_, err := ca.Write([]byte{byte(rounds)})
			require.NoError(t, err, "round %d", rounds)
			_, err = io.ReadFull(ca, buf)
			require.NoError(t, err, "round %d", rounds)
		}
		t.Logf("%d round trips over 7 s", rounds)
		ca.Close()
		cb.Close()
	}
}
