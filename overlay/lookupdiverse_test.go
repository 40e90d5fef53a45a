package overlay_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/internal/testnet/hostile"
	"github.com/p2psock/p2psock/internal/testnet/ovnet"
	"github.com/p2psock/p2psock/overlay"
)

// With the routing table's diversity limits off, a crowd of identities
// ground next to a key on one address fills the K nodes a lookup finds;
// LookupDiverse still looks past it and returns n nodes of n subnets, the
// crowd taking one place, with their addresses.
func TestLoopbackLookupDiverseSeesPastACrowd(t *testing.T) {
	testnet.CheckLeaks(t)
	cfg := overlay.Config{Logger: testnet.Logger(t), SendTimeout: 3 * time.Second, SubnetPerBucket: -1, SubnetPerTable: -1}
	nw, err := hostile.Build(hostile.Options{N: 12, Config: cfg, Parallel: 12})
	require.NoError(t, err)
	t.Cleanup(nw.Close)
	k := overlay.KeyOf([]byte("crowded"))
	crowd := map[overlay.ID]bool{}
	for i := range 25 {
		var priv ed25519.PrivateKey
		for {
			_, p, err := ed25519.GenerateKey(rand.Reader)
			require.NoError(t, err)
			if id := overlay.ID(p.Public().(ed25519.PublicKey)).Key(); id[0]^k[0] < 1<<2 { // 6 bits shared
				priv = p
				break
			}
		}
		c := cfg
		c.Identity = priv
		nd, err := ovnet.Open(c, "127.0.0.250:0", nil, nil)
		require.NoError(t, err)
		require.NoError(t, nd.Bind([]string{nw.Nodes[i%len(nw.Nodes)].Addr()}))
		t.Cleanup(func() { nd.Close() })
		crowd[nd.ID()] = true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nw.Settle(ctx)
	from := nw.Nodes[5]

	ids, err := from.LookupDisjoint(ctx, k)
	require.NoError(t, err)
	inLookup := 0
	for _, id := range ids {
		if crowd[id] {
			inLookup++
		}
	}
	require.Greater(t, inLookup, len(ids)/2, "precondition: the crowd fills the lookup")

	peers, trusted, err := from.LookupDiverse(ctx, k, 1, 6)
	require.NoError(t, err)
	require.Len(t, peers, 6)
	require.LessOrEqual(t, trusted, len(peers))
	subnets := map[string]bool{}
	inSet := 0
	for _, p := range peers {
		require.True(t, p.Addr.IsValid(), "the address of %v", p.ID)
		subnets[overlay.Subnet(p.Addr.Addr()).String()] = true
		if crowd[p.ID] {
			inSet++
		}
	}
	t.Logf("crowd: %d of %d in the lookup, %d of %d in the diverse set", inLookup, len(ids), inSet, len(peers))
	require.Len(t, subnets, 6)
	require.LessOrEqual(t, inSet, 1)
}
