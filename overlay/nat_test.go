package overlay_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/simnet"
	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/internal/testnet/ovnet"
	"github.com/p2psock/p2psock/overlay"
)

// vnet builds a network of overlay nodes on the simulated Internet: one host
// of each of kinds, in order, the first of which must be public (it is every
// node's entry point), and collects their messages.
func vnet(t *testing.T, kinds []simnet.Kind, cfg overlay.Config) *network {
	t.Helper()
	require.Equal(t, simnet.Public, kinds[0], "the entry point is public")
	sn, err := simnet.New()
	require.NoError(t, err)
	t.Cleanup(func() { sn.Close() }) // after the nodes have closed
	if cfg.Logger == nil {
		cfg.Logger = testnet.Logger(t)
	}
	var entry string
	start := func(i int, _ []string) (*ovnet.Node, error) {
		h, err := sn.AddHost(kinds[i])
		if err != nil {
			return nil, err
		}
		pc, err := h.ListenUDP(4000 + i)
		if err != nil {
			return nil, err
		}
		nd, err := ovnet.Open(cfg, "", pc, nil)
		if err != nil {
			pc.Close()
			return nil, err
		}
		var entries []string
		if i == 0 {
			entry = nd.Addr()
		} else {
			entries = []string{entry}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := nd.Join(ctx, entries, i > 0); err != nil {
			nd.Close()
			return nil, err
		}
		return nd, nil
	}
	return collect(t, testnet.Start(t, len(kinds), start, (*ovnet.Node).Addr))
}

// TestVnetNATedNodesAreFullMembers runs 30 nodes on simulated NATs, 12 of
// them (40%) behind full-cone, port-restricted and symmetric NATs, and checks
// that every node is reachable by ID from every kind of node, and that keys
// closest to NATed nodes are delivered to them.
func TestVnetNATedNodesAreFullMembers(t *testing.T) {
	testnet.CheckLeaks(t)
	var kinds []simnet.Kind
	for i := range 30 {
		switch {
		case i < 18:
			kinds = append(kinds, simnet.Public)
		case i < 22:
			kinds = append(kinds, simnet.FullCone)
		case i < 26:
			kinds = append(kinds, simnet.PortRestricted)
		default:
			kinds = append(kinds, simnet.Symmetric)
		}
	}
	// Interleave so NATed nodes join while the network grows.
	order := []int{0, 1, 2, 18, 22, 26, 3, 4, 19, 23, 27, 5, 6, 20, 24, 28, 7, 8, 21, 25, 29, 9, 10, 11, 12, 13, 14, 15, 16, 17}
	shuffled := make([]simnet.Kind, len(order))
	for i, j := range order {
		shuffled[i] = kinds[j]
	}
	kinds = shuffled
	start := time.Now()
	tn := vnet(t, kinds, overlay.Config{})
	t.Logf("network of %d nodes built in %v", len(kinds), time.Since(start))
	nodes := tn.Nodes
	for i, n := range nodes {
		inf := n.Info()
		require.Equal(t, kinds[i] == simnet.Public, inf.Public, "node %d (%v) public=%v", i, kinds[i], inf.Public)
		if kinds[i] != simnet.Public {
			require.NotEqual(t, inf.LocalAddr, inf.Observed, "node %d (%v) sees its NAT's address", i, kinds[i])
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	// By ID: from every NATed node to every other node, and from a public node
	// to every NATed one.
	for i, from := range nodes {
		for j, to := range nodes {
			if i == j || (kinds[i] == simnet.Public && (kinds[j] == simnet.Public || i != 1)) {
				continue
			}
			data := fmt.Appendf(nil, "%d(%v) -> %d(%v)", i, kinds[i], j, kinds[j])
			require.NoError(t, from.Send(ctx, data, to.ID().Key(), false), "%s", data)
			r := tn.expect(data)
			require.Equal(t, to.ID(), r.at, "%s", data)
			require.Equal(t, from.ID(), r.msg.From)
		}
	}
	t.Logf("sends by ID done after %v", time.Since(start))
	// By key: keys right next to each NATed node's ID, then random keys.
	for i, n := range nodes {
		if kinds[i] == simnet.Public {
			continue
		}
		key := n.ID().Key()
		key[31] ^= 1
		from := nodes[testnet.Intn(len(nodes))]
		data := fmt.Appendf(nil, "key of node %d (%v)", i, kinds[i])
		require.NoError(t, from.Send(ctx, data, key, true))
		require.Equal(t, ovnet.Closest(nodes, key), tn.expect(data).at, "%s", data)
	}
	for i := range 60 {
		key := randomKey()
		from := nodes[testnet.Intn(len(nodes))]
		data := fmt.Appendf(nil, "random key %d", i)
		require.NoError(t, from.Send(ctx, data, key, true))
		r := tn.expect(data)
		require.Equal(t, ovnet.Closest(nodes, key), r.at, "%s", data)
		require.True(t, r.msg.ByKey)
	}
	relayed := 0
	for _, n := range nodes {
		relayed += n.Info().Relayed
	}
	t.Logf("contacts reached through relays: %d", relayed)
}

// Two nodes whose NATs refuse a hole punch (symmetric and port-restricted)
// still exchange messages both ways, through the public entry node.
func TestVnetSymmetricAndPortRestrictedExchange(t *testing.T) {
	testnet.CheckLeaks(t)
	tn := vnet(t, []simnet.Kind{simnet.Public, simnet.Symmetric, simnet.PortRestricted}, overlay.Config{})
	sym, prc := tn.Nodes[1], tn.Nodes[2]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, pair := range [][2]*ovnet.Node{{sym, prc}, {prc, sym}} {
		from, to := pair[0], pair[1]
		data := fmt.Appendf(nil, "to %v", to.ID())
		require.NoError(t, from.Send(ctx, data, to.ID().Key(), false))
		require.Equal(t, to.ID(), tn.expect(data).at)
		// A key that is closest to the destination among the three.
		var key overlay.Key
		for {
			key = randomKey()
			if ovnet.Closest(tn.Nodes, key) == to.ID() {
				break
			}
		}
		data = fmt.Appendf(nil, "key for %v", to.ID())
		require.NoError(t, from.Send(ctx, data, key, true))
		r := tn.expect(data)
		require.Equal(t, to.ID(), r.at)
		require.Equal(t, from.ID(), r.msg.From)
	}
	require.Positive(t, sym.Info().Relayed+prc.Info().Relayed, "the two reach each other through a relay")
}
