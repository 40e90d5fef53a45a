package overlay_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/internal/testnet/ovnet"
	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/overlay"
)

// recordingConn keeps a copy of every datagram its socket receives: what a
// forwarder's socket holds.
type recordingConn struct {
	net.PacketConn
	mu  sync.Mutex
	got [][]byte
}

func (c *recordingConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(p)
	if err == nil {
		c.mu.Lock()
		c.got = append(c.got, bytes.Clone(p[:n]))
		c.mu.Unlock()
	}
	return n, addr, err
}

// SetReadBuffer and SetWriteBuffer reach the UDP socket, as quic-go asks.
func (c *recordingConn) SetReadBuffer(n int) error {
	return c.PacketConn.(*net.UDPConn).SetReadBuffer(n)
}
func (c *recordingConn) SetWriteBuffer(n int) error {
	return c.PacketConn.(*net.UDPConn).SetWriteBuffer(n)
}
func (c *blockingConn) SetReadBuffer(n int) error {
	return c.PacketConn.(*net.UDPConn).SetReadBuffer(n)
}
func (c *blockingConn) SetWriteBuffer(n int) error {
	return c.PacketConn.(*net.UDPConn).SetWriteBuffer(n)
}

// holds reports whether any datagram received holds b.
func (c *recordingConn) holds(b []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, d := range c.got {
		if bytes.Contains(d, b) {
			return true
		}
	}
	return false
}

// blockingConn drops every datagram to and from one address: a host that
// cannot reach another directly.
type blockingConn struct {
	net.PacketConn
	blocked netip.AddrPort
}

func (c *blockingConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil || !c.is(addr) {
			return n, addr, err
		}
	}
}

func (c *blockingConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if c.is(addr) {
		return len(p), nil
	}
	return c.PacketConn.WriteTo(p, addr)
}

func (c *blockingConn) is(a net.Addr) bool {
	ua, ok := a.(*net.UDPAddr)
	return ok && ua.AddrPort().Port() == c.blocked.Port() && ua.AddrPort().Addr().Unmap() == c.blocked.Addr().Unmap()
}

// forwardedNet is three nodes on loopback: A cannot reach B directly (its
// socket drops everything to and from B), so whatever A sends B goes
// through F, routed or relayed; F's socket records what it receives. B
// answers service 7 with the reply reply(payload).
type forwardedNet struct {
	a, f, b *ovnet.Node
	atF     *recordingConn
}

const echoService byte = 7

// reply is B's answer to p: p's bytes inverted, so that none of p's bytes
// are in it.
func reply(p []byte) []byte {
	r := make([]byte, len(p))
	for i, c := range p {
		r[i] = ^c
	}
	return r
}

func newForwardedNet(t *testing.T) *forwardedNet {
	t.Helper()
	cfg := overlay.Config{Logger: testnet.Logger(t)}
	listen := func() net.PacketConn {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		require.NoError(t, err)
		return pc
	}
	var n forwardedNet
	var nodes []*ovnet.Node
	t.Cleanup(func() {
		for _, nd := range nodes {
			nd.Close()
		}
	})
	open := func(pc net.PacketConn, entries []string, attach func(*ovnet.Node) error) *ovnet.Node {
		nd, err := ovnet.Open(cfg, "", pc, attach)
		require.NoError(t, err)
		require.NoError(t, nd.Bind(entries))
		nodes = append(nodes, nd)
		return nd
	}
	n.atF = &recordingConn{PacketConn: listen()}
	n.f = open(n.atF, nil, nil)
	n.b = open(listen(), []string{n.f.Addr()}, func(nd *ovnet.Node) error {
		nd.Handle(echoService, func(m overlay.Message) ([]byte, bool) { return reply(m.Data), true })
		return nil
	})
	bAddr := n.b.Sock.LocalAddr().(*net.UDPAddr).AddrPort()
	n.a = open(&blockingConn{PacketConn: listen(), blocked: bAddr}, []string{n.f.Addr()}, nil)
	return &n
}

// secret returns a payload of n random bytes and markers, slices of it that
// a datagram holding any part of the payload in clear would contain.
func secret(n int) (payload []byte, markers [][]byte) {
	payload = make([]byte, n)
	rand.Read(payload)
	for i := 0; i+24 <= n; i += 200 {
		markers = append(markers, payload[i:i+24])
	}
	return payload, markers
}

func holdsAny(c *recordingConn, markers [][]byte) bool {
	for _, m := range markers {
		if c.holds(m) {
			return true
		}
	}
	return false
}

func TestLoopbackSealedForwarderSeesNoPlaintext(t *testing.T) {
	testnet.CheckLeaks(t)
	n := newForwardedNet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	for _, sealed := range []bool{true, false} {
		name := "sealed"
		if !sealed {
			name = "clear (the control: the recorder does see a clear payload)"
		}
		t.Run(name, func(t *testing.T) {
			n.a.SetSealing(sealed)
			n.b.SetSealing(sealed)
			defer n.a.SetSealing(true)
			defer n.b.SetSealing(true)
			forwarded := n.f.Info().Counters.MessagesForwarded + n.f.Info().Counters.FramesRelayed

			// A message to an ID, of three fragments.
			msg, markers := secret(2 * wire.MaxChunk)
			require.NoError(t, n.a.Send(ctx, msg, n.b.ID().Key(), false))
			m, err := n.b.Recv(ctx)
			require.NoError(t, err)
			require.Equal(t, msg, m.Data)
			require.Equal(t, n.a.ID(), m.From)

			// A service call by ID and its reply.
			call, callMarkers := secret(600)
			got, from, err := n.a.SendService(ctx, echoService, call, n.b.ID().Key(), false)
			require.NoError(t, err)
			require.Equal(t, n.b.ID(), from)
			require.Equal(t, reply(call), got)

			after := n.f.Info().Counters
			t.Logf("B got the message over %d hops; F forwarded %d fragments and relayed %d frames",
				m.Hops, after.MessagesForwarded, after.FramesRelayed)
			require.Greater(t, after.MessagesForwarded+after.FramesRelayed, forwarded, "the messages went through F")
			replyMarkers := [][]byte{got[:24], got[300:324], got[576:]}
			require.Equal(t, !sealed, holdsAny(n.atF, markers), "F's socket holds the message")
			require.Equal(t, !sealed, holdsAny(n.atF, callMarkers), "F's socket holds the call")
			require.Equal(t, !sealed, holdsAny(n.atF, replyMarkers), "F's socket holds the reply")
		})
	}
}

func TestLoopbackSealedSpoiledIsRefused(t *testing.T) {
	testnet.CheckLeaks(t)
	tn := loopback(t, 2, overlay.Config{})
	a, b := tn.Nodes[0], tn.Nodes[1]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	a.SpoilSealed(true)
	err := a.Send(ctx, []byte("spoiled"), b.ID().Key(), false)
	require.ErrorIs(t, err, overlay.ErrUndecryptable)
	require.NoError(t, ctx.Err(), "refused at once, not timed out")
	c := b.Info().Counters
	require.GreaterOrEqual(t, c.DroppedUndecryptable, uint64(1))
	require.GreaterOrEqual(t, c.Dropped, c.DroppedUndecryptable)
	require.Zero(t, c.MessagesReceived, "nothing was delivered")

	a.SpoilSealed(false)
	require.NoError(t, a.Send(ctx, []byte("whole"), b.ID().Key(), false))
	require.Equal(t, []byte("whole"), tn.expect([]byte("whole")).msg.Data)
}

func TestLoopbackSealedRoutedOverHops(t *testing.T) {
	testnet.CheckLeaks(t)
	// Small buckets, so that messages by ID take several hops; every
	// socket records what it receives.
	cfg := overlay.Config{K: 2, Logger: testnet.Logger(t)}
	rec := map[overlay.ID]*recordingConn{}
	tn := testnet.Start(t, 16, func(i int, entries []string) (*ovnet.Node, error) {
		// Each on an address of its own, as on the Internet: the
		// diversity limits keep few nodes of one address in a table.
		pc, err := net.ListenPacket("udp", testnet.DistinctLoopbackAddr(i))
		if err != nil {
			return nil, err
		}
		c := &recordingConn{PacketConn: pc}
		nd, err := ovnet.Open(cfg, "", c, nil)
		if err != nil {
			return nil, err
		}
		rec[nd.ID()] = c
		return nd, nd.Bind(entries)
	}, (*ovnet.Node).Addr)
	c := collect(t, tn)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	for _, sealed := range []bool{true, false} {
		for _, nd := range tn.Nodes {
			nd.SetSealing(sealed)
		}
		multiHop, seen := 0, 0
		for i := 0; multiHop < 5; i++ {
			require.Less(t, i, 200, "too few messages took more than one hop")
			from, to := tn.Nodes[testnet.Intn(len(tn.Nodes))], tn.Nodes[testnet.Intn(len(tn.Nodes))]
			if from == to {
				continue
			}
			msg, markers := secret(1500)
			require.NoError(t, from.Send(ctx, msg, to.ID().Key(), false))
			if c.expect(msg).msg.Hops < 2 {
				continue
			}
			multiHop++
			for id, r := range rec {
				if id != from.ID() && id != to.ID() && holdsAny(r, markers) {
					seen++
				}
			}
		}
		t.Logf("sealed %v: a node on the way held the payload %d times", sealed, seen)
		if sealed {
			require.Zero(t, seen, "no forwarder's socket holds a sealed payload")
		} else {
			require.NotZero(t, seen, "the control: forwarders' sockets hold clear payloads")
		}
	}
	for _, nd := range tn.Nodes {
		nd.SetSealing(true)
	}
}
