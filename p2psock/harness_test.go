package p2psock

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/simnet"
	"github.com/p2psock/p2psock/internal/testnet"
)

// The front door's tests build their networks here, on the project's one
// harness (internal/testnet): every network registers the leak check first,
// and the nodes' received messages are collected on one channel.

// testNet is an in-process network of Nodes whose received messages are
// collected on one channel.
type testNet struct {
	t     testing.TB
	nodes []*Node
	in    *testnet.Inbox[received]
}

type received struct {
	at  ID
	msg Message
}

// newEmptyNet is a network with no node yet; the leak check is registered.
func newEmptyNet(t testing.TB) *testNet {
	t.Helper()
	testnet.CheckLeaks(t)
	return newNet(t)
}

func newNet(t testing.TB) *testNet {
	tn := &testNet{t: t, in: testnet.NewInbox[received](t)}
	t.Cleanup(tn.close)
	return tn
}

// newLoopbackNet builds n nodes with cfg on loopback, each joined through a
// random earlier one.
func newLoopbackNet(t testing.TB, n int, cfg Config) *testNet {
	t.Helper()
	tn := newEmptyNet(t)
	start := func(i int, entries []string) (*Node, error) {
		c := cfg
		c.ListenAddr = testnet.LoopbackAddr(i)
		c.Bootstrap, c.JoinOnly = entries, len(entries) > 0
		return tn.start(c)
	}
	tn.nodes = testnet.Start(t, n, start, func(n *Node) string { return n.UDPAddr().String() }).Nodes
	for _, nd := range tn.nodes {
		tn.receive(nd)
	}
	return tn
}

// newVnetNet builds a network on the simulated Internet: hosts of the given
// kinds, in order, the first of which must be public (it is the entry point).
// Public nodes run a TURN relay. mods, if any, adjust each node's Config.
func newVnetNet(t *testing.T, kinds []simnet.Kind, mods ...func(i int, c *Config)) (*testNet, []simnet.Kind) {
	t.Helper()
	testnet.CheckLeaks(t)
	sn, err := simnet.New()
	require.NoError(t, err)
	t.Cleanup(func() { sn.Close() }) // after the nodes have closed
	tn := newNet(t)
	var entry string
	for i, k := range kinds {
		h, err := sn.AddHost(k)
		require.NoError(t, err)
		pc, err := h.ListenUDP(4000 + i)
		require.NoError(t, err)
		cfg := Config{PacketConn: pc, Logger: testnet.Logger(t)}
		if k == simnet.Public {
			cfg.RelayAddr = ":3478" // every public node offers a TURN relay
		}
		if i == 0 {
			require.Equal(t, simnet.Public, k)
			entry = pc.LocalAddr().String()
		} else {
			cfg.Bootstrap = []string{entry}
			cfg.JoinOnly = true
		}
		for _, m := range mods {
			m(i, &cfg)
		}
		tn.add(cfg)
	}
	return tn, kinds
}

// start opens and binds a node; it may run on any goroutine.
func (tn *testNet) start(cfg Config) (*Node, error) {
	if cfg.Difficulty == 0 {
		cfg.Difficulty = testnet.Difficulty // tests start many nodes; TestDefaultDifficulty checks the default
	}
	nd, err := NewNode(cfg)
	if err != nil {
		return nil, err
	}
	bctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := nd.Bind(bctx); err != nil {
		nd.Close()
		return nil, err
	}
	return nd, nil
}

// add starts a node with cfg, adds it to the network and collects its
// messages; a failure fails the test.
func (tn *testNet) add(cfg Config) *Node {
	t := tn.t
	t.Helper()
	nd, err := tn.start(cfg)
	require.NoError(t, err)
	tn.nodes = append(tn.nodes, nd)
	tn.receive(nd)
	return nd
}

// receive collects nd's messages until the network closes.
func (tn *testNet) receive(nd *Node) {
	tn.in.Collect(func(ctx context.Context) (received, error) {
		m, err := nd.RecvFrom(ctx)
		return received{at: nd.ID(), msg: m}, err
	})
}

func (tn *testNet) close() {
	var wg sync.WaitGroup
	for _, n := range tn.nodes {
		wg.Go(func() { n.Close() })
	}
	wg.Wait()
	tn.in.Close()
}

// expect waits for the message with data payload and returns where it arrived.
func (tn *testNet) expect(data []byte) received {
	tn.t.Helper()
	return tn.expectFunc(func(r received) bool { return slices.Equal(r.msg.Data, data) })
}

// expectFunc waits for a received message that match accepts.
func (tn *testNet) expectFunc(match func(received) bool) received {
	tn.t.Helper()
	return tn.in.Expect(match)
}

var testLogger = testnet.Logger
