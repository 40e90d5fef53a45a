package p2psock

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/p2psock/p2psock/internal/simnet"
	"github.com/stretchr/testify/require"
)

// TestVnetNATedNodesAreFullMembers runs 30 nodes on simulated NATs, 12 of
// them (40%) behind full-cone, port-restricted and symmetric NATs, and checks
// that every node is reachable by ID from every kind of node, and that keys
// closest to NATed nodes are delivered to them.
func TestVnetNATedNodesAreFullMembers(t *testing.T) {
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
	start := time.Now()
	tn, kinds := newVnetNet(t, shuffled)
	t.Logf("network of %d nodes built in %v", len(kinds), time.Since(start))
	nodes := tn.nodes
	for i, n := range nodes {
		inf := n.Info()
		require.Equal(t, kinds[i] == simnet.Public, inf.Public, "node %d (%v) public=%v", i, kinds[i], inf.Public)
		if kinds[i] != simnet.Public {
			require.NotEqual(t, inf.LocalAddr.String(), inf.PublicAddr.String())
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
			require.NoError(t, from.SendTo(ctx, data, to.ID()), "%s", data)
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
		from := nodes[mrand(len(nodes))]
		data := fmt.Appendf(nil, "key of node %d (%v)", i, kinds[i])
		require.NoError(t, from.SendToKey(ctx, data, key))
		r := tn.expect(data)
		require.Equal(t, closestID(nodes, key), r.at, "%s", data)
	}
	for i := range 60 {
		var key Key
		rand.Read(key[:])
		from := nodes[mrand(len(nodes))]
		data := fmt.Appendf(nil, "random key %d", i)
		require.NoError(t, from.SendToKey(ctx, data, key))
		r := tn.expect(data)
		require.Equal(t, closestID(nodes, key), r.at, "%s", data)
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
	tn, _ := newVnetNet(t, []simnet.Kind{simnet.Public, simnet.Symmetric, simnet.PortRestricted})
	sym, prc := tn.nodes[1], tn.nodes[2]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, pair := range [][2]*Node{{sym, prc}, {prc, sym}} {
		from, to := pair[0], pair[1]
		data := fmt.Appendf(nil, "to %v", to.ID())
		require.NoError(t, from.SendTo(ctx, data, to.ID()))
		require.Equal(t, to.ID(), tn.expect(data).at)
		// A key that is closest to the destination among the three.
		var key Key
		for {
			rand.Read(key[:])
			if closestID(tn.nodes, key) == to.ID() {
				break
			}
		}
		data = fmt.Appendf(nil, "key for %v", to.ID())
		require.NoError(t, from.SendToKey(ctx, data, key))
		r := tn.expect(data)
		require.Equal(t, to.ID(), r.at)
		require.Equal(t, from.ID(), r.msg.From)
	}
}
