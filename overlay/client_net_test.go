package overlay_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/internal/testnet/ovnet"
	"github.com/p2psock/p2psock/overlay"
)

// TestLoopbackClientProxyCrashed: a light client's nearest proxy vanishes
// without leaving (its socket closes); the client finds it dead by its
// keepalives, attaches to the full node now among the closest to its ID,
// and every live full node reaches it by ID again. No full node ever has the
// client in its routing table.
func TestLoopbackClientProxyCrashed(t *testing.T) {
	testnet.CheckLeaks(t)
	// Short keepalive timings: a silent proxy is dead after about 3 s.
	cfg := overlay.Config{KeepAlive: time.Second, Liveness: time.Second}
	tn := loopback(t, 10, cfg)
	ccfg := cfg
	ccfg.Client = true
	ccfg.Logger = testnet.Logger(t)
	client, err := ovnet.Open(ccfg, testnet.LoopbackAddr(40), nil, nil)
	require.NoError(t, err)
	require.NoError(t, client.Bind([]string{tn.Nodes[3].Addr()}))
	t.Cleanup(func() { client.Close() })
	tn.receive(client)

	proxies := client.Proxies()
	require.Len(t, proxies, 3)
	var crashed *ovnet.Node
	var live []*ovnet.Node
	for _, n := range tn.Nodes {
		if n.ID() == proxies[0] {
			crashed = n
		} else {
			live = append(live, n)
		}
	}
	require.NotNil(t, crashed)
	require.NoError(t, crashed.Sock.Close()) // a crash: no leave message

	testnet.Eventually(t, 20*time.Second, "the client to replace its crashed proxy, and its new proxies to hold it", func() bool {
		ps := client.Proxies()
		if len(ps) < 3 || slices.Contains(ps, crashed.ID()) {
			return false
		}
		for _, n := range live {
			if slices.Contains(ps, n.ID()) && !n.AttachedClient(client.ID()) {
				return false
			}
		}
		return true
	})
	for i, n := range live {
		data := fmt.Appendf(nil, "to the client from %d", i)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		require.NoError(t, n.Send(ctx, data, client.ID().Key(), false), "from node %d", i)
		cancel()
		require.Equal(t, client.ID(), tn.expect(data).at)
	}
	for _, n := range live {
		require.NotContains(t, n.Contacts(), client.ID())
	}
	require.Zero(t, client.Info().Clients)
}
