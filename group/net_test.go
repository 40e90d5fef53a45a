package group

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/simnet"
	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/internal/testnet/ovnet"
	"github.com/p2psock/p2psock/overlay"
)

// The group tests run on overlay nodes without the front door
// (internal/testnet/ovnet), each with a group service.

// testConfig is the group service's Config in the tests' networks: the
// default timings, with the refresh and the redirect grace shortened so
// that trees repair and prune in about a second.
func testConfig(t testing.TB) Config {
	return Config{Refresh: time.Second, RedirectGrace: 200 * time.Millisecond, Logger: testnet.Logger(t)}
}

// gnet is a network of overlay nodes with group services: groups[i] runs
// on nodes[i].
type gnet struct {
	nodes  []*ovnet.Node
	groups []*Groups
}

// attach starts a group service with cfg on each node the harness opens,
// and closes it with the node.
func (gn *gnet) attach(cfg Config) func(i int, nd *ovnet.Node) error {
	return func(i int, nd *ovnet.Node) error {
		g := New(nd.Overlay, cfg) // nd.Overlay is a Host; *ovnet.Node is not (its field Overlay hides the method)
		gn.groups[i] = g
		nd.Closers = append(nd.Closers, g.Close)
		return nil
	}
}

// loopback starts n nodes on loopback, with ocfg and cfg; the leak check is
// registered first.
func loopback(t *testing.T, n int, ocfg overlay.Config, cfg Config) *gnet {
	t.Helper()
	testnet.CheckLeaks(t)
	gn := &gnet{groups: make([]*Groups, n)}
	gn.nodes = ovnet.Loopback(t, n, ocfg, gn.attach(cfg)).Nodes
	return gn
}

// vnet starts one node on a host of each kind of the simulated Internet,
// in order, all joined through the first, which must be public; the leak
// check is registered first.
func vnet(t *testing.T, kinds []simnet.Kind, cfg Config) *gnet {
	t.Helper()
	testnet.CheckLeaks(t)
	require.Equal(t, simnet.Public, kinds[0])
	sn, err := simnet.New()
	require.NoError(t, err)
	t.Cleanup(func() { sn.Close() }) // after the nodes have closed
	gn := &gnet{groups: make([]*Groups, len(kinds))}
	ocfg := overlay.Config{Logger: testnet.Logger(t)}
	var entry []string
	start := func(i int, _ []string) (*ovnet.Node, error) {
		h, err := sn.AddHost(kinds[i])
		if err != nil {
			return nil, err
		}
		pc, err := h.ListenUDP(4000 + i)
		if err != nil {
			return nil, err
		}
		attach := gn.attach(cfg)
		nd, err := ovnet.Open(ocfg, "", pc, func(nd *ovnet.Node) error { return attach(i, nd) })
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := nd.Join(ctx, entry, i > 0); err != nil {
			nd.Close()
			return nil, fmt.Errorf("node %d (%v): %w", i, kinds[i], err)
		}
		if i == 0 {
			entry = []string{nd.Addr()}
		}
		return nd, nil
	}
	gn.nodes = testnet.Start(t, len(kinds), start, (*ovnet.Node).Addr).Nodes
	return gn
}

// closest returns the index of the node closest to k among nodes.
func closest(nodes []*ovnet.Node, k overlay.Key) int {
	best := 0
	for i, nd := range nodes {
		if overlay.CmpDistance(nd.ID().Key(), nodes[best].ID().Key(), k) < 0 {
			best = i
		}
	}
	return best
}

// inbox collects what members receive and announces every arrival, so
// that a test waits on the event rather than polling.
type inbox struct {
	mu   sync.Mutex
	got  map[overlay.ID][]Message
	news chan struct{}
}

func newInbox() *inbox { return &inbox{got: map[overlay.ID][]Message{}, news: make(chan struct{}, 1)} }

// run collects m's messages, as node id's, until m closes or the test ends.
func (in *inbox) run(t *testing.T, id overlay.ID, m *Member) {
	ctx := t.Context()
	go func() {
		for {
			msg, err := m.Recv(ctx)
			if err != nil {
				return
			}
			in.mu.Lock()
			in.got[id] = append(in.got[id], msg)
			in.mu.Unlock()
			select {
			case in.news <- struct{}{}:
			default:
			}
		}
	}()
}

// count returns how many members received data, and how many copies in all.
func (in *inbox) count(data string) (members, copies int) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, ms := range in.got {
		n := 0
		for _, m := range ms {
			if string(m.Data) == data {
				n++
			}
		}
		if n > 0 {
			members++
		}
		copies += n
	}
	return members, copies
}

// of returns the messages node id's member received.
func (in *inbox) of(id overlay.ID) []Message {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]Message(nil), in.got[id]...)
}

// await waits until cond holds, checking it at every arrival, for at most
// d; it reports whether cond held.
func (in *inbox) await(d time.Duration, cond func() bool) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for !cond() {
		select {
		case <-in.news:
		case <-timer.C:
			return cond()
		}
	}
	return true
}

// wait fails the test unless data reaches at least members members within
// 30 s.
func (in *inbox) wait(t *testing.T, data string, members int) {
	t.Helper()
	if !in.await(30*time.Second, func() bool { m, _ := in.count(data); return m >= members }) {
		m, _ := in.count(data)
		t.Fatalf("%q reached %d members, not %d", data, m, members)
	}
}
