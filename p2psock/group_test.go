package p2psock

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/p2psock/p2psock/internal/simnet"
	"github.com/p2psock/p2psock/overlay"
	"github.com/stretchr/testify/require"
)

// groupRecv collects what the members of a group receive.
type groupRecv struct {
	mu  sync.Mutex
	got map[ID][]GroupMessage
	wg  sync.WaitGroup
}

func (gr *groupRecv) run(ctx context.Context, id ID, g *GroupSocket) {
	gr.wg.Go(func() {
		for {
			m, err := g.Recv(ctx)
			if err != nil {
				return
			}
			gr.mu.Lock()
			gr.got[id] = append(gr.got[id], m)
			gr.mu.Unlock()
		}
	})
}

// count returns how many members received data, and how many copies in all.
func (gr *groupRecv) count(data string) (members, copies int) {
	gr.mu.Lock()
	defer gr.mu.Unlock()
	for _, ms := range gr.got {
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
	return
}

func (gr *groupRecv) wait(t *testing.T, data string, members int) {
	t.Helper()
	require.Eventually(t, func() bool { m, _ := gr.count(data); return m >= members }, 30*time.Second, 5*time.Millisecond,
		"%q did not reach %d members", data, members)
}

func TestLoopbackGroupMulticastAnycastBroadcast(t *testing.T) {
	tn := newLoopbackNet(t, 40, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	gr := &groupRecv{got: map[ID][]GroupMessage{}}
	defer gr.wg.Wait()
	defer cancel()

	members := map[ID]*GroupSocket{}
	var memberNodes []*Node
	for i := 0; i < 36; i += 3 {
		n := tn.nodes[i]
		g, err := n.Join(ctx, "chat")
		require.NoError(t, err)
		members[n.ID()] = g
		memberNodes = append(memberNodes, n)
		gr.run(ctx, n.ID(), g)
	}
	require.Len(t, members, 12)

	// A multicast from a member and one from a non-member reach all 12
	// members exactly once.
	for _, from := range []*Node{tn.nodes[3], tn.nodes[4]} {
		data := fmt.Sprintf("multicast from %v", from.ID())
		require.NoError(t, from.Group("chat").Send(ctx, []byte(data)))
		gr.wait(t, data, 12)
	}
	for _, from := range []*Node{tn.nodes[3], tn.nodes[4]} {
		data := fmt.Sprintf("multicast from %v", from.ID())
		m, c := gr.count(data)
		require.Equal(t, 12, m)
		require.Equal(t, 12, c, "each member exactly once")
	}

	// Order from one sender is kept.
	for i := range 20 {
		require.NoError(t, tn.nodes[7].Group("chat").Send(ctx, fmt.Appendf(nil, "seq %02d", i)))
	}
	gr.wait(t, "seq 19", 12)
	gr.mu.Lock()
	for id, ms := range gr.got {
		var seqs []string
		for _, m := range ms {
			if len(m.Data) == 6 && string(m.Data[:4]) == "seq " {
				seqs = append(seqs, string(m.Data))
			}
		}
		require.True(t, slices.IsSorted(seqs), "member %v got %v", id, seqs)
		require.Len(t, seqs, 20)
	}
	gr.mu.Unlock()

	// 50 anycasts each reach exactly one member.
	for i := range 50 {
		data := fmt.Sprintf("anycast %d", i)
		require.NoError(t, tn.nodes[(i*7)%40].Group("chat").SendAny(ctx, []byte(data)))
		gr.wait(t, data, 1)
	}
	for i := range 50 {
		m, c := gr.count(fmt.Sprintf("anycast %d", i))
		require.Equal(t, 1, m)
		require.Equal(t, 1, c)
	}
	gr.mu.Lock()
	for _, ms := range gr.got {
		for _, m := range ms {
			if len(m.Data) > 8 && string(m.Data[:8]) == "anycast " {
				require.True(t, m.Anycast)
			}
		}
	}
	gr.mu.Unlock()

	// An empty group, and Recv without joining.
	require.ErrorIs(t, tn.nodes[1].Group("nobody").SendAny(ctx, []byte("?")), ErrEmptyGroup)
	_, err := tn.nodes[1].Group("chat").Recv(ctx)
	require.ErrorIs(t, err, ErrNotMember)

	// A member that closes its socket stops receiving.
	leaver := memberNodes[2]
	require.NoError(t, members[leaver.ID()].Close())
	require.NoError(t, tn.nodes[5].Group("chat").Send(ctx, []byte("after leave")))
	gr.wait(t, "after leave", 11)
	gr.mu.Lock()
	for _, m := range gr.got[leaver.ID()] {
		require.NotEqual(t, "after leave", string(m.Data))
	}
	gr.mu.Unlock()

	// A broadcast reaches all 40 nodes, through RecvFrom.
	require.NoError(t, tn.nodes[9].Broadcast(ctx, []byte("to everyone")))
	seen := map[ID]bool{}
	for len(seen) < 40 {
		r := tn.expect([]byte("to everyone"))
		require.True(t, r.msg.Broadcast)
		require.Equal(t, tn.nodes[9].ID(), r.msg.From)
		require.False(t, seen[r.at], "a node got the broadcast twice")
		seen[r.at] = true
	}

	// After the root closes, multicasts reach every remaining member again.
	key := KeyOf([]byte("chat"))
	root := closestID(tn.nodes, key)
	var live []*Node
	for _, n := range tn.nodes {
		if n.ID() == root {
			require.NoError(t, n.Close())
		} else {
			live = append(live, n)
		}
	}
	want := 11
	if _, ok := members[root]; ok && root != leaver.ID() {
		want--
	}
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; ; i++ {
		data := fmt.Sprintf("after root %d", i)
		sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
		err := live[1].Group("chat").Send(sctx, []byte(data))
		scancel()
		if err == nil {
			ok := false
			wctx, wcancel := context.WithTimeout(ctx, 3*time.Second)
			for wctx.Err() == nil {
				if m, _ := gr.count(data); m >= want {
					ok = true
					break
				}
				time.Sleep(5 * time.Millisecond) // polling the collected messages
			}
			wcancel()
			if ok {
				t.Logf("multicasts reach all %d members again %d attempts after the root closed", want, i+1)
				break
			}
		}
		require.True(t, time.Now().Before(deadline), "members not reached 30 s after the root closed")
	}
}

// A node that is not a member and forwards for one child steps aside: it
// redirects the child to its own parent, and leaves the tree. Small buckets
// (2) make routes long, so that a member's next hop toward the key is a
// forwarder rather than the root.
func TestLoopbackGroupForwarderWithOneChildStepsAside(t *testing.T) {
	tn := newLoopbackNet(t, 40, Config{BucketSize: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	gr := &groupRecv{got: map[ID][]GroupMessage{}}
	defer gr.wg.Wait()
	defer cancel()

	key := KeyOf([]byte("pruned"))
	byID := map[ID]*Node{}
	for _, n := range tn.nodes {
		byID[n.ID()] = n
	}
	// A member whose next hop toward the key has a next hop of its own.
	var member, fwd *Node
	for _, n := range tn.nodes {
		next, ok := n.Overlay().NextHop(key)
		if !ok {
			continue
		}
		if _, ok := byID[next].Overlay().NextHop(key); ok {
			member, fwd = n, byID[next]
			break
		}
	}
	require.NotNil(t, member, "no route of two hops toward the key")

	g, err := member.Join(ctx, "pruned")
	require.NoError(t, err)
	gr.run(ctx, member.ID(), g)
	require.Eventually(t, func() bool {
		p, ok := member.Groups().Parent(key)
		return ok && ID(p) != fwd.ID()
	}, 20*time.Second, 5*time.Millisecond, "the member stays under a forwarder with one child")
	require.Eventually(t, func() bool { return len(fwd.Groups().Children(key)) == 0 },
		20*time.Second, 5*time.Millisecond, "the forwarder keeps the child")
	p, _ := member.Groups().Parent(key)
	require.Equal(t, -1, overlay.CmpDistance(p.Key(), member.ID().Key(), key), "the new parent is closer to the key")

	// Multicasts still reach the member, once each.
	for i, from := range []*Node{tn.nodes[0], member} {
		data := fmt.Sprintf("after pruning %d", i)
		require.NoError(t, from.Group("pruned").Send(ctx, []byte(data)))
		gr.wait(t, data, 1)
		_, c := gr.count(data)
		require.Equal(t, 1, c)
	}
}

// Members behind simulated NATs (vnet) of every kind get every multicast
// exactly once and anycasts reach one member: tree edges to NATed nodes are
// link messages over hole-punched or relayed overlay paths.
func TestVnetGroupAcrossNATs(t *testing.T) {
	kinds := []simnet.Kind{simnet.Public, simnet.Public, simnet.FullCone, simnet.Symmetric, simnet.Public,
		simnet.PortRestricted, simnet.Public, simnet.Symmetric, simnet.FullCone, simnet.Public,
		simnet.PortRestricted, simnet.Public, simnet.Symmetric, simnet.Public, simnet.PortRestricted, simnet.Public}
	tn, kinds := newVnetNet(t, kinds)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	gr := &groupRecv{got: map[ID][]GroupMessage{}}
	defer gr.wg.Wait()
	defer cancel()

	members := 0
	for i, n := range tn.nodes {
		if kinds[i] == simnet.Public && i%3 != 0 {
			continue // every NATed node, and some public ones
		}
		g, err := n.Join(ctx, "natted")
		require.NoError(t, err, "node %d (%v)", i, kinds[i])
		gr.run(ctx, n.ID(), g)
		members++
	}
	for i, from := range []*Node{tn.nodes[3], tn.nodes[1]} { // a symmetric-NAT member, a public non-member
		data := fmt.Sprintf("across NATs %d", i)
		require.NoError(t, from.Group("natted").Send(ctx, []byte(data)))
		gr.wait(t, data, members)
		m, c := gr.count(data)
		require.Equal(t, members, m)
		require.Equal(t, members, c, "each member exactly once")
	}
	for i := range 10 {
		data := fmt.Sprintf("any across NATs %d", i)
		require.NoError(t, tn.nodes[(i*5)%len(tn.nodes)].Group("natted").SendAny(ctx, []byte(data)))
		gr.wait(t, data, 1)
		_, c := gr.count(data)
		require.Equal(t, 1, c)
	}
}

// No tree node keeps more than 16 children: a wide node hands the children
// farthest from the key to member children nearer to it, and every member
// still gets each multicast once.
func TestLoopbackGroupFanoutIsBounded(t *testing.T) {
	tn := newLoopbackNet(t, 40, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	gr := &groupRecv{got: map[ID][]GroupMessage{}}
	defer gr.wg.Wait()
	defer cancel()

	key := KeyOf([]byte("wide"))
	for _, n := range tn.nodes {
		g, err := n.Join(ctx, "wide")
		require.NoError(t, err)
		gr.run(ctx, n.ID(), g)
	}
	widest := func() (int, ID) {
		most, at := 0, ID{}
		for _, n := range tn.nodes {
			if c := len(n.Groups().Children(key)); c > most {
				most, at = c, n.ID()
			}
		}
		return most, at
	}
	require.Eventually(t, func() bool { w, _ := widest(); return w <= 16 }, 20*time.Second, 10*time.Millisecond,
		"a node keeps more than 16 children")
	w, at := widest()
	t.Logf("widest node %v: %d children", at, w)

	for i, from := range []*Node{tn.nodes[0], tn.nodes[39]} {
		data := fmt.Sprintf("wide %d", i)
		require.NoError(t, from.Group("wide").Send(ctx, []byte(data)))
		gr.wait(t, data, 40)
		_, c := gr.count(data)
		require.Equal(t, 40, c, "each member exactly once")
	}
}
