package dht

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/internal/testnet/ovnet"
	"github.com/p2psock/p2psock/overlay"
)

// testNet is a loopback network of overlay nodes (the project's one harness)
// each running the DHT: dhts[i] runs on Nodes[i].
type testNet struct {
	*testnet.Net[*ovnet.Node]
	cfg  Config
	dhts []*DHT
}

// newLoopbackDHT builds n nodes on loopback, each running the DHT with cfg,
// each on an address of its own (127.0.0.N: its own subnet, as nodes spread
// over the Internet are). The caller registers the leak check first.
func newLoopbackDHT(t *testing.T, n int, cfg Config) *testNet {
	t.Helper()
	tn := &testNet{cfg: cfg}
	start := func(i int, entries []string) (*ovnet.Node, error) {
		nd, err := ovnet.Open(overlay.Config{Logger: testnet.Logger(t)}, testnet.DistinctLoopbackAddr(i), nil, tn.attach)
		if err != nil {
			return nil, err
		}
		if err := nd.Bind(entries); err != nil {
			return nil, err
		}
		return nd, nil
	}
	tn.Net = testnet.Start(t, n, start, (*ovnet.Node).Addr)
	return tn
}

// attach starts the DHT on nd, before it joins; it closes with the node.
func (tn *testNet) attach(nd *ovnet.Node) error {
	d, err := New(nd.Overlay, tn.cfg)
	if err != nil {
		return err
	}
	nd.Closers = append(nd.Closers, d.Close)
	tn.dhts = append(tn.dhts, d)
	return nil
}

// join opens a node with cfg running the DHT, joins it through the first
// node and adds it to the network.
func (tn *testNet) join(t *testing.T, cfg overlay.Config) (*ovnet.Node, *DHT) {
	t.Helper()
	nd, err := ovnet.Open(cfg, testnet.DistinctLoopbackAddr(len(tn.Nodes)), nil, tn.attach)
	require.NoError(t, err)
	if err := nd.Bind([]string{tn.Nodes[0].Addr()}); err != nil {
		t.Fatalf("joining: %v", err)
	}
	tn.Nodes = append(tn.Nodes, nd)
	return nd, tn.dhts[len(tn.dhts)-1]
}

func values(rs []Record) []string {
	var out []string
	for _, r := range rs {
		out = append(out, string(r.Value))
	}
	slices.Sort(out)
	return out
}

func TestLoopbackDHTOwnersAddGetRemove(t *testing.T) {
	testnet.CheckLeaks(t)
	tn := newLoopbackDHT(t, 40, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const key = "user:alice"
	owners := []int{3, 17, 29}
	for _, i := range owners {
		require.NoError(t, tn.dhts[i].Add(ctx, key, fmt.Appendf(nil, "device-%d", i), 0))
	}
	reader := tn.dhts[35]
	rs, err := reader.Get(ctx, key)
	require.NoError(t, err)
	require.Equal(t, []string{"device-17", "device-29", "device-3"}, values(rs))
	for _, r := range rs {
		var want int
		fmt.Sscanf(string(r.Value), "device-%d", &want)
		require.Equal(t, tn.Nodes[want].ID(), r.Owner, "owner of %s", r.Value)
		require.Equal(t, key, r.Key)
		require.True(t, r.Expires.After(time.Now().Add(50*time.Minute)))
	}

	// GetFrom filters by owner.
	rs, err = reader.GetFrom(ctx, key, tn.Nodes[17].ID())
	require.NoError(t, err)
	require.Equal(t, []string{"device-17"}, values(rs))

	// An owner with two values removes one; the other values stay.
	require.NoError(t, tn.dhts[3].Add(ctx, key, []byte("laptop-3"), 0))
	require.NoError(t, tn.dhts[3].Remove(ctx, key, []byte("device-3")))
	rs, err = reader.Get(ctx, key)
	require.NoError(t, err)
	require.Equal(t, []string{"device-17", "device-29", "laptop-3"}, values(rs))

	// Another node's removal touches only its own values.
	require.NoError(t, tn.dhts[29].Remove(ctx, key, []byte("device-17")))
	rs, err = reader.Get(ctx, key)
	require.NoError(t, err)
	require.Contains(t, values(rs), "device-17")

	// Delete takes all of an owner's values.
	require.NoError(t, tn.dhts[3].Delete(ctx, key))
	rs, err = reader.Get(ctx, key)
	require.NoError(t, err)
	require.Equal(t, []string{"device-17", "device-29"}, values(rs))
}

func TestLoopbackDHTTTLExpires(t *testing.T) {
	testnet.CheckLeaks(t)
	tn := newLoopbackDHT(t, 12, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, tn.dhts[2].Add(ctx, "short", []byte("1s"), time.Second))
	require.NoError(t, tn.dhts[2].Add(ctx, "short", []byte("1h"), time.Hour))
	rs, err := tn.dhts[9].Get(ctx, "short")
	require.NoError(t, err)
	require.Equal(t, []string{"1h", "1s"}, values(rs))
	w, err := tn.dhts[5].Watch(ctx, "short")
	require.NoError(t, err)
	ev := <-w // wait for the replicas' expiry, not for a clock
	require.Equal(t, EventExpired, ev.Type)
	require.Equal(t, "1s", string(ev.Record.Value))
	rs, err = tn.dhts[9].Get(ctx, "short")
	require.NoError(t, err)
	require.Equal(t, []string{"1h"}, values(rs))
}

func TestLoopbackDHTWatchSeesAddAndRemove(t *testing.T) {
	testnet.CheckLeaks(t)
	tn := newLoopbackDHT(t, 20, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := tn.dhts[4].Watch(ctx, "room")
	require.NoError(t, err)
	require.NoError(t, tn.dhts[11].Add(ctx, "room", []byte("bob"), 0))
	ev := <-w
	require.Equal(t, EventAdded, ev.Type)
	require.Equal(t, "bob", string(ev.Record.Value))
	require.Equal(t, tn.Nodes[11].ID(), ev.Record.Owner)
	require.NoError(t, tn.dhts[11].Remove(ctx, "room", []byte("bob")))
	ev = <-w
	require.Equal(t, EventRemoved, ev.Type)
	require.Equal(t, "bob", string(ev.Record.Value))
}

func TestLoopbackDHTSurvivesQuarterOfNodesClosing(t *testing.T) {
	testnet.CheckLeaks(t)
	tn := newLoopbackDHT(t, 40, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const key = "shared"
	var want []string
	for _, i := range []int{1, 8, 15, 22, 36} {
		v := fmt.Sprintf("v%d", i)
		want = append(want, v)
		require.NoError(t, tn.dhts[i].Add(ctx, key, []byte(v), 0))
	}
	slices.Sort(want)
	// Close ten nodes, among them replicas of the key (but not the owners).
	k := overlay.KeyOf([]byte(key))
	order := make([]int, len(tn.Nodes))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		if k.Closer(tn.Nodes[a].ID().Key(), tn.Nodes[b].ID().Key()) {
			return -1
		}
		return 1
	})
	// Half of the replica set (the 1st, 3rd and 5th closest, if not owners),
	// and seven nodes outside it.
	owners := []int{1, 8, 15, 22, 36, 0}
	closed := map[int]bool{}
	shut := func(i int) {
		closed[i] = true
		tn.Nodes[i].Close() // the DHT first, then the overlay
	}
	for _, j := range []int{0, 2, 4} {
		if !slices.Contains(owners, order[j]) {
			shut(order[j])
		}
	}
	for _, i := range order[10:] {
		if len(closed) < 10 && !slices.Contains(owners, i) {
			shut(i)
		}
	}
	require.Len(t, closed, 10)
	reader := 0
	for closed[reader] {
		reader++
	}
	rs, err := tn.dhts[reader].Get(ctx, key)
	require.NoError(t, err)
	require.Equal(t, want, values(rs))
}

func TestLoopbackDHTLimits(t *testing.T) {
	testnet.CheckLeaks(t)
	tn := newLoopbackDHT(t, 8, Config{MaxValuesPerOwner: 2, MaxValueSize: 100})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d := tn.dhts[1]
	for _, err := range []error{d.Add(ctx, "k", make([]byte, 101), 0), d.Add(ctx, "k", make([]byte, overlay.MaxMessage+1), 0)} {
		require.ErrorIs(t, err, ErrValueTooLarge)
		require.ErrorIs(t, err, overlay.ErrMessageTooLarge, "a too-large error is the routing tier's too")
	}
	for _, err := range []error{d.Add(ctx, string(make([]byte, 2000)), nil, 0), func() error {
		_, err := d.Get(ctx, string(make([]byte, 2000)))
		return err
	}()} {
		require.ErrorIs(t, err, ErrKeyTooLarge)
		require.ErrorIs(t, err, overlay.ErrMessageTooLarge)
	}
	require.NotErrorIs(t, ErrBadTTL, overlay.ErrMessageTooLarge)
	require.ErrorIs(t, d.Add(ctx, "k", nil, 48*time.Hour), ErrBadTTL)
	require.NoError(t, d.Add(ctx, "k", []byte("a"), 0))
	require.NoError(t, d.Add(ctx, "k", []byte("b"), 0))
	require.ErrorIs(t, d.Add(ctx, "k", []byte("c"), 0), ErrQuota, "a full replica refuses new values")
	rs, err := tn.dhts[5].Get(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, values(rs), "old values are kept")
	require.NoError(t, d.Add(ctx, "k", []byte("a"), time.Minute), "renewing a value is not a new one")
}

// holds reports whether d's replica store has a live value under key.
func holds(d *DHT, key string, value string) bool {
	for _, op := range d.st.get(key, overlay.ID{}, time.Now()) {
		if op.op == opAdd && string(op.value) == value {
			return true
		}
	}
	return false
}

// Records move to the nodes that become the closest to their key: a node
// that joins closer than every replica, and the next node when a replica
// leaves.
func TestLoopbackDHTHandoffOnJoinAndLeave(t *testing.T) {
	testnet.CheckLeaks(t)
	cfg := Config{Republish: 300 * time.Millisecond}
	tn := newLoopbackDHT(t, 16, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const key, value = "handoff", "v"
	require.NoError(t, tn.dhts[3].Add(ctx, key, []byte(value), 0))
	k := overlay.KeyOf([]byte(key))

	// A newcomer closer to the key than every node.
	var priv ed25519.PrivateKey
	for {
		_, cand, err := ed25519.GenerateKey(rand.Reader)
		require.NoError(t, err)
		id := overlay.ID(cand.Public().(ed25519.PublicKey))
		if slices.IndexFunc(tn.Nodes, func(n *ovnet.Node) bool { return !k.Closer(id.Key(), n.ID().Key()) }) < 0 {
			priv = cand
			break
		}
	}
	_, d := tn.join(t, overlay.Config{Identity: priv})
	testnet.Eventually(t, 20*time.Second, "the newcomer receives the record", func() bool { return holds(d, key, value) })

	// The closest node that never was in the replica set (of 6) gets the
	// record once enough replicas leave for it to enter the set.
	order := slices.Clone(tn.dhts)
	slices.SortFunc(order, func(a, b *DHT) int {
		if k.Closer(a.ov.ID().Key(), b.ov.ID().Key()) {
			return -1
		}
		return 1
	})
	idx := 7 // order[1..6] were the set before the newcomer joined
	if order[idx] == tn.dhts[3] {
		idx++ // the owner holds its record anyway
	}
	next := order[idx]
	require.False(t, holds(next, key, value), "precondition: it never was a replica")
	before := idx // nodes closer than next; close non-owners until 5 remain
	for _, r := range order[:idx] {
		if before > 5 && r != tn.dhts[3] {
			tn.Nodes[slices.Index(tn.dhts, r)].Close()
			before--
		}
	}
	testnet.Eventually(t, 20*time.Second, "the next node receives the record after replicas left", func() bool { return holds(next, key, value) })
}

// A replica refuses a replayed add once the owner has removed the value.
func TestLoopbackDHTRefusesReplayedAdd(t *testing.T) {
	testnet.CheckLeaks(t)
	tn := newLoopbackDHT(t, 10, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	owner := tn.dhts[2]
	require.NoError(t, owner.Add(ctx, "k", []byte("v"), 0))
	owner.mu.Lock()
	add := owner.own["k"]["v"]
	owner.mu.Unlock()
	require.NoError(t, owner.Remove(ctx, "k", []byte("v")))
	ids, err := owner.replicas(ctx, "k")
	require.NoError(t, err)
	reply, err := tn.dhts[7].request(ctx, ids[0], append([]byte{reqStore}, add.raw...))
	require.NoError(t, err)
	require.Equal(t, []byte{statusStale}, reply)
	// A forged add (value changed after signing) is refused as invalid.
	forged := slices.Clone(add.raw)
	forged[len(forged)-65] ^= 1
	reply, err = tn.dhts[7].request(ctx, ids[0], append([]byte{reqStore}, forged...))
	require.NoError(t, err)
	require.Equal(t, []byte{statusInvalid}, reply)
	rs, err := tn.dhts[5].Get(ctx, "k")
	require.NoError(t, err)
	require.Empty(t, rs)
}

// A key whose records do not fit one reply is read page by page, whole.
func TestLoopbackDHTGetPagesLargeKeys(t *testing.T) {
	testnet.CheckLeaks(t)
	tn := newLoopbackDHT(t, 8, Config{})
	var want []string
	for i := range 8 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		v := fmt.Sprintf("%d-%s", i, make([]byte, 30000))
		want = append(want, v)
		require.NoError(t, tn.dhts[2].Add(ctx, "big", []byte(v), 0))
		cancel()
	}
	slices.Sort(want)
	for range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		rs, err := tn.dhts[6].Get(ctx, "big")
		cancel()
		require.NoError(t, err)
		require.Equal(t, want, values(rs))
	}
}
