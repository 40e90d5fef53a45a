package p2psock

import (
	"context"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
)

// clientNet is six full nodes with a DHT each on loopback and a light
// client (Config.Client) with a DHT, joined through one of them.
func clientNet(t *testing.T) (full []dhtNode, client dhtNode) {
	t.Helper()
	const n = 7
	tn := newDHTNet(t, n, func(i int) Config { return Config{Client: i == n-1, Logger: testnet.Logger(t)} })
	return tn.Nodes[:n-1], tn.Nodes[n-1]
}

// recvFrom reads nd's next message within d.
func recvFrom(t *testing.T, nd *Node, d time.Duration) Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	m, err := nd.RecvFrom(ctx)
	require.NoError(t, err)
	return m
}

// requireNoContact fails if a full node has the client in its routing table.
func requireNoContact(t *testing.T, full []dhtNode, id ID) {
	t.Helper()
	for _, f := range full {
		require.NotContains(t, f.Contacts(), id, "the client is in %v's routing table", f.ID())
	}
}

// TestClientLoopback: a light client joined through a full node is reached
// by SendTo and Connect from a full node, sends, reads and writes the DHT
// and connects itself, and never enters a full node's routing table nor
// takes a message sent to a key, its own ID included.
func TestClientLoopback(t *testing.T) {
	full, client := clientNet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	inf := client.Info()
	require.True(t, inf.Client)
	require.NotEmpty(t, inf.Proxies)
	for _, p := range inf.Proxies {
		require.Contains(t, idsOf(full), p)
	}

	t.Run("SendTo the client", func(t *testing.T) {
		for i, f := range full {
			require.NoError(t, f.SendTo(ctx, []byte{byte(i)}, client.ID()), "from node %d", i)
			m := recvFrom(t, client.Node, 10*time.Second)
			require.Equal(t, f.ID(), m.From)
		}
	})
	t.Run("SendTo from the client", func(t *testing.T) {
		f := full[len(full)-1]
		require.NoError(t, client.SendTo(ctx, []byte("up"), f.ID()))
		m := recvFrom(t, f.Node, 10*time.Second)
		require.Equal(t, client.ID(), m.From)
	})
	t.Run("SendToKey never reaches the client", func(t *testing.T) {
		keys := []Key{client.ID().Key(), KeyOf([]byte("a")), KeyOf([]byte("b"))}
		for _, k := range keys {
			require.NoError(t, full[0].SendToKey(ctx, []byte("k"), k))
			require.NoError(t, client.SendToKey(ctx, []byte("k"), k))
		}
		got := 0
		for _, f := range full {
			for {
				rctx, rcancel := context.WithTimeout(ctx, 50*time.Millisecond)
				_, err := f.RecvFrom(rctx)
				rcancel()
				if err != nil {
					break
				}
				got++
			}
		}
		require.Equal(t, 2*len(keys), got, "every message to a key arrived at a full node")
		rctx, rcancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer rcancel()
		_, err := client.RecvFrom(rctx)
		require.ErrorIs(t, err, context.DeadlineExceeded, "the client took a message sent to a key")
	})
	t.Run("DHT", func(t *testing.T) {
		require.NoError(t, full[1].d.Add(ctx, "k", []byte("from a full node"), time.Hour))
		require.NoError(t, client.d.Add(ctx, "k", []byte("from the client"), time.Hour))
		rs, err := client.d.Get(ctx, "k")
		require.NoError(t, err)
		require.Len(t, rs, 2)
		rs, err = full[2].d.Get(ctx, "k")
		require.NoError(t, err)
		require.Len(t, rs, 2)
		require.Zero(t, client.d.Stats().Records, "the client stores no record")
	})
	t.Run("Connect both ways", func(t *testing.T) {
		for _, pair := range [][2]*Node{{full[3].Node, client.Node}, {client.Node, full[4].Node}} {
			a, b := connectPair(t, ctx, pair[0], pair[1])
			_, err := a.Write([]byte("ping"))
			require.NoError(t, err)
			buf := make([]byte, 4)
			_, err = io.ReadFull(b, buf)
			require.NoError(t, err)
			require.Equal(t, "ping", string(buf))
			a.Close()
			b.Close()
		}
	})
	t.Run("Call and CallKey", func(t *testing.T) {
		for _, n := range append(slices.Clone(full), client) {
			n.Service("echo").Handle(func(_ context.Context, req Message) ([]byte, error) {
				return append(req.Data, n.ID().String()[:4]...), nil
			})
		}
		reply, err := client.Service("echo").Call(ctx, full[2].ID(), []byte("c:"))
		require.NoError(t, err)
		require.Equal(t, "c:"+full[2].ID().String()[:4], string(reply))
		reply, err = full[2].Service("echo").Call(ctx, client.ID(), []byte("f:"))
		require.NoError(t, err)
		require.Equal(t, "f:"+client.ID().String()[:4], string(reply))
		for _, k := range []Key{client.ID().Key(), KeyOf([]byte("x"))} {
			_, from, err := client.Service("echo").CallKey(ctx, k, nil)
			require.NoError(t, err)
			require.NotEqual(t, client.ID(), from)
			_, from, err = full[0].Service("echo").CallKey(ctx, k, nil)
			require.NoError(t, err)
			require.NotEqual(t, client.ID(), from)
		}
	})
	t.Run("Broadcast from the client", func(t *testing.T) {
		require.NoError(t, client.Broadcast(ctx, []byte("to every node")))
		for i, f := range full {
			for {
				m := recvFrom(t, f.Node, 10*time.Second)
				if string(m.Data) == "to every node" {
					require.True(t, m.Broadcast)
					require.Equal(t, client.ID(), m.From, "at node %d", i)
					break
				}
			}
		}
	})
	t.Run("group member", func(t *testing.T) {
		var socks []*GroupSocket
		for _, n := range []*Node{full[0].Node, full[5].Node, client.Node} {
			g, err := n.Join(ctx, "room")
			require.NoError(t, err)
			defer g.Close()
			socks = append(socks, g)
		}
		require.NoError(t, full[0].Group("room").Send(ctx, []byte("to all")))
		require.NoError(t, client.Group("room").Send(ctx, []byte("from the client")))
		for _, g := range socks {
			for _, want := range []string{"to all", "from the client"} {
				rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
				m, err := g.Recv(rctx)
				rcancel()
				require.NoError(t, err)
				require.Equal(t, want, string(m.Data))
			}
		}
	})
	requireNoContact(t, full, client.ID())
	attached := 0
	for _, f := range full {
		attached += f.Info().Clients
	}
	require.Positive(t, attached)
}

// TestClientProxyClosedLoopback: when the client's nearest proxy closes, the
// client re-chooses its proxies and stays reachable by ID.
func TestClientProxyClosedLoopback(t *testing.T) {
	full, client := clientNet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	proxies := client.Info().Proxies
	require.NotEmpty(t, proxies)
	gone := proxies[0]
	var rest []dhtNode
	for _, f := range full {
		if f.ID() == gone {
			require.NoError(t, f.Close())
		} else {
			rest = append(rest, f)
		}
	}
	require.Len(t, rest, len(full)-1)
	testnet.Eventually(t, 20*time.Second, "the client to replace its proxy, and its new proxies to hold it", func() bool {
		ps := client.Info().Proxies
		if len(ps) < min(len(proxies), len(rest)) || slices.Contains(ps, gone) {
			return false
		}
		for _, f := range rest {
			if slices.Contains(ps, f.ID()) && !f.ov.AttachedClient(client.ID()) {
				return false
			}
		}
		return true
	})
	for i, f := range rest {
		require.NoError(t, f.SendTo(ctx, []byte{byte(i)}, client.ID()), "from node %d", i)
		m := recvFrom(t, client.Node, 10*time.Second)
		require.Equal(t, f.ID(), m.From)
	}
	requireNoContact(t, rest, client.ID())
}

func idsOf(ns []dhtNode) []ID {
	out := make([]ID, len(ns))
	for i, n := range ns {
		out[i] = n.ID()
	}
	return out
}
