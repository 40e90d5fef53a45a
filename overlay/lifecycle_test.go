package overlay_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/internal/testnet/ovnet"
	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/overlay"
)

// A Send to a peer that stopped answering in the middle of it (it would go
// on until its 30 s context ends) is ended by Close, with net.ErrClosed,
// and Close does not wait for it.
func TestLoopbackCloseEndsSendToSilentPeer(t *testing.T) {
	testnet.CheckLeaks(t)
	tn := ovnet.Loopback(t, 3, overlay.Config{}, nil)
	peer, sc := ovnet.JoinSilent(t, tn, overlay.Config{}, nil)
	a := tn.Nodes[1]
	require.Contains(t, a.Contacts(), peer.ID(), "precondition: the peer is a contact")
	sc.Silence()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sent := make(chan error, 1)
	go func() { sent <- a.Send(ctx, []byte("are you there?"), peer.ID().Key(), false) }()
	testnet.Eventually(t, 10*time.Second, "the message reaches the silent peer", func() bool { return sc.Dropped() > 0 })
	select {
	case err := <-sent:
		t.Fatalf("the Send ended before Close: %v", err)
	default:
	}
	require.NoError(t, a.Close())
	err := <-sent
	require.ErrorIs(t, err, net.ErrClosed)
	require.NotErrorIs(t, err, context.DeadlineExceeded)
}

// After Close every call fails with an error that matches net.ErrClosed,
// and so does a call that was waiting when Close came.
func TestLoopbackCallsAfterCloseFailWithErrClosed(t *testing.T) {
	testnet.CheckLeaks(t)
	tn := ovnet.Loopback(t, 3, overlay.Config{}, nil)
	n, other := tn.Nodes[2], tn.Nodes[0]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	recvErr := make(chan error, 1)
	go func() {
		_, err := n.Recv(ctx)
		recvErr <- err
	}()
	require.NoError(t, n.Overlay.Close())
	require.ErrorIs(t, <-recvErr, net.ErrClosed, "a pending Recv is ended by Close")
	require.NoError(t, n.Overlay.Close(), "Close is idempotent")

	calls := map[string]func() error{
		"Send":     func() error { return n.Send(ctx, []byte("x"), other.ID().Key(), false) },
		"SendKey":  func() error { return n.Send(ctx, []byte("x"), overlay.KeyOf([]byte("k")), true) },
		"SendSelf": func() error { return n.Send(ctx, []byte("x"), n.ID().Key(), false) },
		"SendLink": func() error { return n.SendLink(ctx, other.ID(), wire.ServiceDHT, []byte("x")) },
		"Recv":     func() error { _, err := n.Recv(ctx); return err },
		"Lookup":   func() error { _, err := n.Lookup(ctx, overlay.KeyOf([]byte("k"))); return err },
		"Join":     func() error { return n.Join(ctx, []string{other.Addr()}, true) },
		"Meet":     func() error { return n.Meet(ctx, "127.0.0.1:1") },
		"LinkWith": func() error { _, err := n.LinkWith(ctx, overlay.Peer{ID: other.ID()}, overlay.ID{}); return err },
		"SendServe": func() error {
			_, _, err := n.SendService(ctx, wire.ServiceDHT, nil, other.ID().Key(), false)
			return err
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			err := call()
			require.ErrorIs(t, err, net.ErrClosed)
			var opErr *net.OpError
			require.True(t, errors.As(err, &opErr), "a *net.OpError: %v", err)
		})
	}
}

// A flood of valid-looking frames that the node must forward to a hop that
// never acknowledges (each would hold a goroutine for the hop's
// retransmission timeouts) grows the node's goroutines by at most its
// budget, Config.Workers; the frames beyond it are dropped unacknowledged
// and counted.
func TestLoopbackFloodToSilentHopIsBoundedAndCounted(t *testing.T) {
	testnet.CheckLeaks(t)
	const workers = 8
	tn := ovnet.Loopback(t, 1, overlay.Config{Workers: workers}, nil)
	target := tn.Nodes[0]
	hop, sc := ovnet.JoinSilent(t, tn, overlay.Config{}, nil)
	require.Equal(t, []overlay.ID{hop.ID()}, target.Contacts(), "precondition: the silent hop is the target's one contact")
	sc.Silence()

	// Watch the process's goroutines while the flood lasts.
	base := runtime.NumGoroutine()
	var peak atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			peak.Store(max(peak.Load(), int64(runtime.NumGoroutine())))
			select {
			case <-stop:
				return
			default:
				runtime.Gosched()
			}
		}
	}()

	s := newRawSender(t, target)
	const frames = 200
	for i := range frames {
		// Messages to keys next to the hop's ID: the target hands each to
		// the hop and waits for its acknowledgement.
		key := hop.ID().Key()
		key[31] ^= byte(i)
		s.send(s.message(key, true, fmt.Appendf(nil, "flood %d", i), time.Now(), s.priv))
		if i%16 == 15 { // keep within the socket's queues: let the target take them in
			want := uint64(i + 1)
			testnet.Eventually(t, 5*time.Second, "the target takes the frames in", func() bool {
				return target.Info().Counters.PacketsIn >= want
			})
		}
	}
	testnet.Eventually(t, 5*time.Second, "the target takes every frame in", func() bool {
		return target.Info().Counters.PacketsIn >= frames
	})
	close(stop)
	<-sampled

	c := target.Info().Counters
	t.Logf("goroutines: %d before the flood, %d at most during it; forwarded %d, dropped busy %d", base, peak.Load(), c.MessagesForwarded, c.DroppedBusy)
	require.LessOrEqual(t, peak.Load(), int64(base+workers+4), "goroutines grew beyond the budget")
	require.Positive(t, c.DroppedBusy, "frames beyond the budget are counted")
	require.GreaterOrEqual(t, c.Dropped, c.DroppedBusy)
}

// Right after Join returns, the new node is reachable by ID from the node
// farthest from it in ID space, at the first try, and no node on the way
// refuses the message for want of a route: its neighbours know it. Thirty
// nodes join one after another, each addressed at once, then thirty more
// join all at once, and each is addressed as soon as all have joined.
func TestLoopbackJoinReturnsReachable(t *testing.T) {
	testnet.CheckLeaks(t)
	tn := loopback(t, 20, overlay.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	noRoute := func() (sum uint64) {
		for _, n := range tn.Nodes {
			sum += n.Info().Counters.DroppedNoRoute
		}
		return sum
	}
	reach := func(n *ovnet.Node, what string) {
		t.Helper()
		far := slices.MaxFunc(tn.Nodes, func(a, b *ovnet.Node) int {
			return overlay.CmpDistance(a.ID().Key(), b.ID().Key(), n.ID().Key())
		})
		before := noRoute()
		data := fmt.Appendf(nil, "welcome, %s", what)
		require.NoError(t, far.Send(ctx, data, n.ID().Key(), false), "%s", what)
		require.Equal(t, n.ID(), tn.expect(data).at)
		require.Equal(t, before, noRoute(), "%s: a node on the way had no route to it", what)
	}
	for i := range 30 {
		n := tn.Add()
		tn.receive(n)
		reach(n, fmt.Sprintf("node %d joined alone", i))
	}
	fresh := tn.AddConcurrently(30)
	for _, n := range fresh {
		tn.receive(n)
	}
	for i, n := range fresh {
		reach(n, fmt.Sprintf("node %d of 30 joined at once", i))
	}
}

// A Send returns when its context ends, even while its next hops are dead
// ones it is still trying one after another (each costs a retransmission
// timeout or two; a table of them once kept a 10 s Send going for minutes).
func TestLoopbackSendEndsAtItsDeadlineAmongDeadHops(t *testing.T) {
	testnet.CheckLeaks(t)
	tn := ovnet.Loopback(t, 16, overlay.Config{}, nil)
	from := tn.Nodes[0]
	require.GreaterOrEqual(t, len(from.Contacts()), 10, "precondition: the sender knows most nodes")
	for _, n := range tn.Nodes[1:] {
		require.NoError(t, n.Sock.Close()) // a crash: no leave message
	}
	// The key farthest from the sender: every contact is a closer hop.
	key := from.ID().Key()
	for i := range key {
		key[i] ^= 0xff
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	sent := make(chan error, 1)
	go func() { sent <- from.Send(ctx, []byte("anyone?"), key, true) }()
	select {
	case err := <-sent:
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.ErrorIs(t, err, overlay.ErrUnreachable)
	case <-time.After(5 * time.Second):
		t.Fatal("the Send went on more than 5 s past its 300 ms deadline")
	}
}
