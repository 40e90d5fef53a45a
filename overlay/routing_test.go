package overlay_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/internal/testnet/ovnet"
	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/overlay"
)

func TestLoopbackSendToKeyAndID(t *testing.T) {
	testnet.CheckLeaks(t)
	tn := loopback(t, 40, overlay.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range 50 {
		from := tn.Nodes[testnet.Intn(len(tn.Nodes))]
		key := randomKey()
		data := fmt.Appendf(nil, "key message %d", i)
		require.NoError(t, from.Send(ctx, data, key, true))
		r := tn.expect(data)
		require.Equal(t, ovnet.Closest(tn.Nodes, key), r.at, "message %d went to the wrong node", i)
		require.Equal(t, from.ID(), r.msg.From)
		require.Equal(t, key, r.msg.To)
		require.True(t, r.msg.ByKey)
	}
	for i := range 50 {
		from := tn.Nodes[testnet.Intn(len(tn.Nodes))]
		to := tn.Nodes[testnet.Intn(len(tn.Nodes))]
		data := fmt.Appendf(nil, "id message %d", i)
		require.NoError(t, from.Send(ctx, data, to.ID().Key(), false))
		r := tn.expect(data)
		require.Equal(t, to.ID(), r.at)
		require.Equal(t, from.ID(), r.msg.From)
		require.Equal(t, to.ID().Key(), r.msg.To)
		require.False(t, r.msg.ByKey)
	}
}

// Nodes that join all at once, through one entry point, route exactly as soon
// as their Join calls have returned.
func TestLoopbackConcurrentJoins(t *testing.T) {
	testnet.CheckLeaks(t)
	tn := loopback(t, 1, overlay.Config{})
	for _, nd := range tn.AddConcurrently(39) {
		tn.receive(nd)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range 200 {
		from := tn.Nodes[testnet.Intn(len(tn.Nodes))]
		key := randomKey()
		data := fmt.Appendf(nil, "concurrent %d", i)
		require.NoError(t, from.Send(ctx, data, key, true))
		require.Equal(t, ovnet.Closest(tn.Nodes, key), tn.expect(data).at, "message %d of 200 went to a node that is not the closest", i)
	}
}

func TestLoopbackLargeMessages(t *testing.T) {
	testnet.CheckLeaks(t)
	tn := loopback(t, 12, overlay.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, b := tn.Nodes[1], tn.Nodes[7]
	for _, size := range []int{0, 1, wire.MaxChunk, wire.MaxChunk + 1, 20000, overlay.MaxMessage} {
		data := make([]byte, size)
		rand.Read(data)
		require.NoError(t, a.Send(ctx, data, b.ID().Key(), false), "size %d", size)
		r := tn.expectFunc(func(r received) bool { return r.msg.From == a.ID() && len(r.msg.Data) == size })
		require.Equal(t, b.ID(), r.at)
		require.Equal(t, data, r.msg.Data, "size %d arrived changed", size)
	}
	err := a.Send(ctx, make([]byte, overlay.MaxMessage+1), b.ID().Key(), false)
	require.ErrorIs(t, err, overlay.ErrMessageTooLarge)
	err = a.Send(ctx, make([]byte, overlay.MaxMessage+1), overlay.KeyOf([]byte("k")), true)
	require.ErrorIs(t, err, overlay.ErrMessageTooLarge)
	err = a.SendLink(ctx, b.ID(), wire.ServiceDHT, make([]byte, overlay.MaxMessage+1))
	require.ErrorIs(t, err, overlay.ErrMessageTooLarge)
}

func TestLoopbackUnknownIDIsUnreachable(t *testing.T) {
	testnet.CheckLeaks(t)
	tn := loopback(t, 10, overlay.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, ghost, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	err = tn.Nodes[3].Send(ctx, []byte("anyone?"), overlay.Key(ghost.Public().(ed25519.PublicKey)), false)
	require.ErrorIs(t, err, overlay.ErrUnreachable)
	// The answer came from the network (a signed refusal), not from our deadline.
	require.NotErrorIs(t, err, context.DeadlineExceeded)
}

func TestLoopbackSendToSelf(t *testing.T) {
	testnet.CheckLeaks(t)
	tn := loopback(t, 3, overlay.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := tn.Nodes[1]
	require.NoError(t, n.Send(ctx, []byte("me"), n.ID().Key(), false))
	r := tn.expect([]byte("me"))
	require.Equal(t, n.ID(), r.at)
	require.Equal(t, n.ID(), r.msg.From)
	require.Zero(t, r.msg.Hops)
	// A key equal to this node's ID is closest to this node.
	require.NoError(t, n.Send(ctx, []byte("my key"), n.ID().Key(), true))
	r = tn.expect([]byte("my key"))
	require.Equal(t, n.ID(), r.at)
	require.True(t, r.msg.ByKey)
}

// Services built on the overlay get request and reply in one acknowledged
// round trip, and their messages never reach Recv.
func TestLoopbackServiceRequestReply(t *testing.T) {
	testnet.CheckLeaks(t)
	const service = wire.ServiceDHT
	tn := collect(t, ovnet.Loopback(t, 20, overlay.Config{}, func(_ int, n *ovnet.Node) error {
		self := n.ID()
		n.Handle(service, func(m overlay.Message) ([]byte, bool) {
			if bytes.HasPrefix(m.Data, []byte("big")) {
				return bytes.Repeat([]byte{'x'}, 20000), true
			}
			return append(append([]byte{}, self[:]...), m.Data...), true
		})
		return nil
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 30 {
		key := randomKey()
		from := tn.Nodes[testnet.Intn(len(tn.Nodes))]
		req := fmt.Appendf(nil, "request %d", i)
		reply, by, err := from.SendService(ctx, service, req, key, true)
		require.NoError(t, err)
		want := ovnet.Closest(tn.Nodes, key)
		require.Equal(t, want, by, "answered by the node closest to the key")
		require.Equal(t, want[:], reply[:32], "the reply is the handler's")
		require.Equal(t, req, reply[32:])
	}
	// A reply of several fragments comes back whole, also from a node to itself.
	for _, to := range []*ovnet.Node{tn.Nodes[5], tn.Nodes[0]} {
		reply, _, err := tn.Nodes[0].SendService(ctx, service, []byte("big"), to.ID().Key(), false)
		require.NoError(t, err)
		require.Equal(t, bytes.Repeat([]byte{'x'}, 20000), reply)
	}
	// No handler for a service: a clear error, from the network or locally.
	for _, to := range []*ovnet.Node{tn.Nodes[7], tn.Nodes[3]} {
		_, _, err := tn.Nodes[3].SendService(ctx, 200, []byte("?"), to.ID().Key(), false)
		require.ErrorIs(t, err, overlay.ErrNoService)
		require.NotErrorIs(t, err, context.DeadlineExceeded)
	}
	select {
	case r := <-tn.got:
		t.Fatalf("a service message reached Recv: %q", r.msg.Data)
	default:
	}
}

func TestLoopbackNetworksDoNotMix(t *testing.T) {
	testnet.CheckLeaks(t)
	alpha := loopback(t, 2, overlay.Config{Network: "alpha"})
	n, err := ovnet.Open(overlay.Config{Network: "beta"}, "127.0.0.1:0", nil, nil)
	require.NoError(t, err)
	defer n.Close()
	// A joinOnly Join tries its silent entry point until ctx ends.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = n.Join(ctx, []string{alpha.Nodes[0].Addr()}, true)
	require.ErrorIs(t, err, overlay.ErrNoEntryPoint)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Positive(t, alpha.Nodes[0].Info().Counters.DroppedWrongNet)
	require.Equal(t, 1, alpha.Nodes[0].Info().Contacts, "the beta node must not enter alpha's table")
}

func TestLoopbackJoinOnlyWithoutEntryPoint(t *testing.T) {
	testnet.CheckLeaks(t)
	// A port with nobody behind it.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := pc.LocalAddr().String()
	pc.Close()

	// The nodes try their entry points at the same time: without joinOnly
	// a node waits for its entry point's answer for 3 s, with it until ctx
	// ends (an entry point that cannot be resolved fails at once); the
	// results are checked here.
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
	defer cancel()
	boots := [][]string{nil, {dead}, {"no-such-host.invalid:1"}, {dead}}
	joinOnly := []bool{true, true, true, false}
	nodes := make([]*ovnet.Node, len(boots))
	errs := make([]error, len(boots))
	var wg sync.WaitGroup
	for i := range boots {
		n, err := ovnet.Open(overlay.Config{}, "127.0.0.1:0", nil, nil)
		require.NoError(t, err)
		defer n.Close()
		nodes[i] = n
		wg.Go(func() { errs[i] = n.Join(ctx, boots[i], joinOnly[i]) })
	}
	wg.Wait()
	for i := range 3 {
		require.ErrorIs(t, errs[i], overlay.ErrNoEntryPoint, "bootstrap %v", boots[i])
	}
	require.ErrorIs(t, errs[1], context.DeadlineExceeded, "a joinOnly Join waits for its entry point until ctx ends")
	require.NotErrorIs(t, errs[2], context.DeadlineExceeded, "an unresolvable entry point fails at once")
	// Without joinOnly the node starts a network of its own.
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n := nodes[3]
	require.NoError(t, errs[3])
	require.NoError(t, n.Send(ctx, []byte("alone"), overlay.KeyOf([]byte("x")), true))
	m, err := n.Recv(ctx)
	require.NoError(t, err)
	require.Equal(t, "alone", string(m.Data))
}

// busyConn is a node's UDP socket that loses the first drop packets from
// one source, as the socket of a busy node loses what it cannot read in
// time.
type busyConn struct {
	net.PacketConn
	from    net.Addr
	drop    int
	dropped chan struct{} // gets a value for each packet lost
}

func (c *busyConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, from, err := c.PacketConn.ReadFrom(b)
		if err != nil || c.drop == 0 || from.String() != c.from.String() {
			return n, from, err
		}
		c.drop--
		c.dropped <- struct{}{}
	}
}

// TestLoopbackJoinWaitsForBusyEntryPoint: an entry point that lost a
// newcomer's first bootstrap Pings (a node of a large network whose machine
// is busy) is pinged again while the caller's context lasts, and the
// newcomer joins through it. Before, Join gave up on an entry point after 4
// Pings (3 s) whatever its context, and a newcomer whose one entry point
// was busy for longer failed with ErrNoEntryPoint.
func TestLoopbackJoinWaitsForBusyEntryPoint(t *testing.T) {
	testnet.CheckLeaks(t)
	joiner, err := ovnet.Open(overlay.Config{}, testnet.LoopbackAddr(1), nil, nil)
	require.NoError(t, err)
	defer joiner.Close()
	pc, err := net.ListenPacket("udp", testnet.LoopbackAddr(0))
	require.NoError(t, err)
	const lost = 5 // the 4 Pings of the first 3 s, and one more
	bc := &busyConn{PacketConn: pc, from: joiner.Sock.LocalAddr(), drop: lost, dropped: make(chan struct{}, lost)}
	entry, err := ovnet.Open(overlay.Config{}, "", bc, nil)
	require.NoError(t, err)
	defer entry.Close()
	require.NoError(t, entry.Bind(nil))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, joiner.Join(ctx, []string{entry.Addr()}, true))
	require.Len(t, bc.dropped, lost, "the entry point lost the first Pings")
	require.Equal(t, []overlay.ID{entry.ID()}, joiner.Contacts())
	testnet.Eventually(t, 10*time.Second, "the entry point has the newcomer in its table",
		func() bool { return slices.Contains(entry.Contacts(), joiner.ID()) })
}
