package group

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/simnet"
	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/overlay"
)

func TestLoopbackGroupMulticastAnycastBroadcast(t *testing.T) {
	gn := loopback(t, 40, overlay.Config{}, testConfig(t))
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	in := newInbox()
	chat := overlay.KeyOf([]byte("chat"))

	members := map[overlay.ID]*Member{}
	var memberAt []int
	for i := 0; i < 36; i += 3 {
		m, err := gn.groups[i].Join(ctx, chat)
		require.NoError(t, err)
		members[gn.nodes[i].ID()] = m
		memberAt = append(memberAt, i)
		in.run(t, gn.nodes[i].ID(), m)
	}
	require.Len(t, members, 12)

	// A multicast from a member and one from a non-member reach all 12
	// members exactly once.
	for _, from := range []int{3, 4} {
		data := fmt.Sprintf("multicast from %d", from)
		require.NoError(t, gn.groups[from].Publish(ctx, chat, []byte(data)))
		in.wait(t, data, 12)
	}
	for _, from := range []int{3, 4} {
		m, c := in.count(fmt.Sprintf("multicast from %d", from))
		require.Equal(t, 12, m)
		require.Equal(t, 12, c, "each member exactly once")
	}

	// Order from one sender is kept.
	for i := range 20 {
		require.NoError(t, gn.groups[7].Publish(ctx, chat, fmt.Appendf(nil, "seq %02d", i)))
	}
	in.wait(t, "seq 19", 12)
	for id := range members {
		var seqs []string
		for _, m := range in.of(id) {
			require.Equal(t, chat, m.Group)
			if len(m.Data) == 6 && string(m.Data[:4]) == "seq " {
				require.Equal(t, gn.nodes[7].ID(), m.From)
				seqs = append(seqs, string(m.Data))
			}
		}
		require.True(t, slices.IsSorted(seqs), "member %v got %v", id, seqs)
		require.Len(t, seqs, 20)
	}

	// 50 anycasts each reach exactly one member.
	for i := range 50 {
		data := fmt.Sprintf("anycast %d", i)
		require.NoError(t, gn.groups[(i*7)%40].Anycast(ctx, chat, []byte(data)))
		in.wait(t, data, 1)
	}
	for i := range 50 {
		m, c := in.count(fmt.Sprintf("anycast %d", i))
		require.Equal(t, 1, m)
		require.Equal(t, 1, c)
	}
	for id := range members {
		for _, m := range in.of(id) {
			require.Equal(t, len(m.Data) > 8 && string(m.Data[:8]) == "anycast ", m.Anycast, "%q", m.Data)
		}
	}

	// An empty group.
	require.ErrorIs(t, gn.groups[1].Anycast(ctx, overlay.KeyOf([]byte("nobody")), []byte("?")), ErrEmptyGroup)

	// A member that closes stops receiving.
	leaver := gn.nodes[memberAt[2]].ID()
	require.NoError(t, members[leaver].Close())
	require.NoError(t, gn.groups[5].Publish(ctx, chat, []byte("after leave")))
	in.wait(t, "after leave", 11)
	for _, m := range in.of(leaver) {
		require.NotEqual(t, "after leave", string(m.Data))
	}

	// A broadcast reaches all 40 nodes once, on their overlay's receive
	// queue; a second one comes after it, with no copy of the first between.
	require.NoError(t, gn.groups[9].Broadcast(ctx, []byte("to everyone")))
	for i, nd := range gn.nodes {
		m, err := nd.Recv(ctx)
		require.NoError(t, err, "node %d", i)
		require.Equal(t, "to everyone", string(m.Data), "node %d", i)
		require.True(t, m.Broadcast)
		require.Equal(t, gn.nodes[9].ID(), m.From)
	}
	require.NoError(t, gn.groups[9].Broadcast(ctx, []byte("second")))
	for i, nd := range gn.nodes {
		m, err := nd.Recv(ctx)
		require.NoError(t, err, "node %d", i)
		require.Equal(t, "second", string(m.Data), "node %d got a broadcast twice", i)
	}

	// After the root closes, multicasts reach every remaining member again.
	root := closest(gn.nodes, chat)
	require.NoError(t, gn.nodes[root].Close())
	want := 11
	if _, ok := members[gn.nodes[root].ID()]; ok && gn.nodes[root].ID() != leaver {
		want--
	}
	from := (root + 1) % 40
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; ; i++ {
		data := fmt.Sprintf("after root %d", i)
		sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
		err := gn.groups[from].Publish(sctx, chat, []byte(data))
		scancel()
		if err == nil && in.await(3*time.Second, func() bool { m, _ := in.count(data); return m >= want }) {
			t.Logf("multicasts reach all %d members again %d attempts after the root closed", want, i+1)
			break
		}
		require.True(t, time.Now().Before(deadline), "members not reached 30 s after the root closed")
	}
}

// A node that is not a member and forwards for one child steps aside: it
// redirects the child to its own parent, and leaves the tree. Small buckets
// (2) make routes long, so that a member's next hop toward the key is a
// forwarder rather than the root.
func TestLoopbackGroupForwarderWithOneChildStepsAside(t *testing.T) {
	gn := loopback(t, 40, overlay.Config{K: 2}, testConfig(t))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	in := newInbox()
	key := overlay.KeyOf([]byte("pruned"))
	at := map[overlay.ID]int{}
	for i, nd := range gn.nodes {
		at[nd.ID()] = i
	}
	// A member whose next hop toward the key has a next hop of its own.
	member, fwd := -1, -1
	for i, nd := range gn.nodes {
		next, ok := nd.NextHop(key)
		if !ok {
			continue
		}
		if _, ok := gn.nodes[at[next]].NextHop(key); ok {
			member, fwd = i, at[next]
			break
		}
	}
	require.NotEqual(t, -1, member, "no route of two hops toward the key")
	mg, fg := gn.groups[member], gn.groups[fwd]

	m, err := mg.Join(ctx, key)
	require.NoError(t, err)
	in.run(t, gn.nodes[member].ID(), m)
	testnet.Eventually(t, 20*time.Second, "the member leaves the forwarder with one child", func() bool {
		p, ok := mg.Parent(key)
		return ok && p != gn.nodes[fwd].ID()
	})
	testnet.Eventually(t, 20*time.Second, "the forwarder lets its child go", func() bool { return len(fg.Children(key)) == 0 })
	p, _ := mg.Parent(key)
	require.Equal(t, -1, overlay.CmpDistance(p.Key(), gn.nodes[member].ID().Key(), key), "the new parent is closer to the key")

	// Multicasts still reach the member, once each.
	for i, from := range []int{0, member} {
		data := fmt.Sprintf("after pruning %d", i)
		require.NoError(t, gn.groups[from].Publish(ctx, key, []byte(data)))
		in.wait(t, data, 1)
		_, c := in.count(data)
		require.Equal(t, 1, c)
	}
}

// No tree node keeps more than MaxFanout children: a wide node hands the
// children farthest from the key to member children nearer to it, and every
// member still gets each multicast once. With MaxFanout 6, 24 nodes of
// which most have the root as next hop make a tree far too wide at first.
func TestLoopbackGroupFanoutIsBounded(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxFanout = 6
	gn := loopback(t, 24, overlay.Config{}, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	in := newInbox()
	key := overlay.KeyOf([]byte("wide"))
	for i, g := range gn.groups {
		m, err := g.Join(ctx, key)
		require.NoError(t, err)
		in.run(t, gn.nodes[i].ID(), m)
	}
	widest := func() (most, at int) {
		for i, g := range gn.groups {
			if c := len(g.Children(key)); c > most {
				most, at = c, i
			}
		}
		return most, at
	}
	testnet.Eventually(t, 20*time.Second, "no node keeps more than 6 children", func() bool { w, _ := widest(); return w <= 6 })
	w, at := widest()
	t.Logf("widest node %d: %d children", at, w)

	for i, from := range []int{0, 23} {
		data := fmt.Sprintf("wide %d", i)
		require.NoError(t, gn.groups[from].Publish(ctx, key, []byte(data)))
		in.wait(t, data, 24)
		_, c := in.count(data)
		require.Equal(t, 24, c, "each member exactly once")
	}
}

// Members behind simulated NATs of every kind get every multicast exactly
// once and anycasts reach one member: tree edges to NATed nodes are link
// messages over hole-punched or relayed overlay paths.
func TestVnetGroupAcrossNATs(t *testing.T) {
	kinds := []simnet.Kind{simnet.Public, simnet.Public, simnet.FullCone, simnet.Symmetric, simnet.Public,
		simnet.PortRestricted, simnet.Public, simnet.Symmetric, simnet.FullCone, simnet.Public,
		simnet.PortRestricted, simnet.Public, simnet.Symmetric, simnet.Public, simnet.PortRestricted, simnet.Public}
	gn := vnet(t, kinds, testConfig(t))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	in := newInbox()
	key := overlay.KeyOf([]byte("natted"))

	members := 0
	for i, g := range gn.groups {
		if kinds[i] == simnet.Public && i%3 != 0 {
			continue // every NATed node, and some public ones
		}
		m, err := g.Join(ctx, key)
		require.NoError(t, err, "node %d (%v)", i, kinds[i])
		in.run(t, gn.nodes[i].ID(), m)
		members++
	}
	for i, from := range []int{3, 1} { // a symmetric-NAT member, a public non-member
		data := fmt.Sprintf("across NATs %d", i)
		require.NoError(t, gn.groups[from].Publish(ctx, key, []byte(data)))
		in.wait(t, data, members)
		m, c := in.count(data)
		require.Equal(t, members, m)
		require.Equal(t, members, c, "each member exactly once")
	}
	for i := range 10 {
		data := fmt.Sprintf("any across NATs %d", i)
		require.NoError(t, gn.groups[(i*5)%len(gn.groups)].Anycast(ctx, key, []byte(data)))
		in.wait(t, data, 1)
		_, c := in.count(data)
		require.Equal(t, 1, c)
	}
}

// Close does not wait out the background work of the service: a child
// that stopped answering holds a multicast's drain in a send of 30 s, and
// Close returns after its flush and its Leaves (200 ms each), cancelling
// the send.
func TestLoopbackGroupCloseCancelsBackgroundWork(t *testing.T) {
	cfg := testConfig(t)
	cfg.SendTimeout = 30 * time.Second
	cfg.FlushTimeout = 200 * time.Millisecond
	cfg.CloseTimeout = 200 * time.Millisecond
	gn := loopback(t, 2, overlay.Config{}, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	root, child := gn.groups[0], gn.groups[1]
	key := gn.nodes[0].ID().Key() // node 0 is the root
	_, err := root.Join(ctx, key)
	require.NoError(t, err)
	_, err = child.Join(ctx, key)
	require.NoError(t, err)
	p, ok := child.Parent(key)
	require.True(t, ok)
	require.Equal(t, gn.nodes[0].ID(), p)
	testnet.Eventually(t, 5*time.Second, "the root has its child", func() bool { return len(root.Children(key)) == 1 })

	require.NoError(t, gn.nodes[1].Sock.Close()) // the child is silent from now on
	require.NoError(t, root.Publish(ctx, key, []byte("into the void")))
	root.mu.Lock()
	drains := root.drains
	root.mu.Unlock()
	require.Equal(t, 1, drains, "the root sends the multicast to its child")

	start := time.Now()
	require.NoError(t, root.Close())
	took := time.Since(start)
	t.Logf("Close took %v", took)
	require.Less(t, took, 2*time.Second)
	require.Zero(t, root.Stats().Background)
	_, err = root.Join(ctx, key)
	require.ErrorIs(t, err, ErrClosed)
}
