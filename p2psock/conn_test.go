package p2psock

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"net/url"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/nat"
)

// openPair opens a stream from a to b and returns both ends.
func openPair(ctx context.Context, a, b *Node) (*Conn, *Conn, error) {
	type res struct {
		c   *Conn
		err error
	}
	acc := make(chan res, 1)
	go func() {
		c, err := b.AcceptContext(ctx)
		acc <- res{c, err}
	}()
	ca, err := a.Connect(ctx, b.ID())
	if err != nil {
		return nil, nil, err // the Accept ends with ctx
	}
	r := <-acc
	if r.err != nil {
		ca.Close()
		return nil, nil, r.err
	}
	return ca, r.c, nil
}

// connectPair is openPair for a test that cannot go on without the stream.
func connectPair(t testing.TB, ctx context.Context, a, b *Node) (*Conn, *Conn) {
	t.Helper()
	ca, cb, err := openPair(ctx, a, b)
	require.NoError(t, err)
	return ca, cb
}

// TestLoopbackConnectExchange: two nodes joined through a third exchange
// 64 MiB each way over one stream, and the bytes arrive intact.
func TestLoopbackConnectExchange(t *testing.T) {
	tn := newLoopbackNet(t, 3, Config{})
	a, b := tn.nodes[1], tn.nodes[2]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ca, cb := connectPair(t, ctx, a, b)
	require.Equal(t, b.ID(), ca.RemoteAddr().(*Addr).ID)
	require.Equal(t, a.ID(), cb.RemoteAddr().(*Addr).ID)
	require.Equal(t, "p2p", ca.RemoteAddr().Network())
	require.False(t, ca.Path().Relayed)

	size := 64 << 20
	if testing.Short() {
		size = 4 << 20
	}
	send := func(c *Conn, seed byte) <-chan [32]byte {
		ch := make(chan [32]byte, 1)
		go func() {
			h := sha256.New()
			buf := make([]byte, 64<<10)
			for sent := 0; sent < size; sent += len(buf) {
				rand.Read(buf)
				h.Write(buf)
				if _, err := c.Write(buf); err != nil {
					t.Error(err)
					break
				}
			}
			require.NoError(t, c.CloseWrite())
			var sum [32]byte
			copy(sum[:], h.Sum(nil))
			ch <- sum
		}()
		return ch
	}
	recv := func(c *Conn) <-chan [32]byte {
		ch := make(chan [32]byte, 1)
		go func() {
			h := sha256.New()
			n, err := io.Copy(h, c)
			require.NoError(t, err)
			require.EqualValues(t, size, n)
			var sum [32]byte
			copy(sum[:], h.Sum(nil))
			ch <- sum
		}()
		return ch
	}
	sa, sb := send(ca, 1), send(cb, 2)
	ra, rb := recv(ca), recv(cb)
	require.Equal(t, <-sa, <-rb)
	require.Equal(t, <-sb, <-ra)
	require.NoError(t, ca.Close())
	require.NoError(t, cb.Close())
}

// TestLoopbackConnectReusesConnection: a second Connect, and a Connect the
// other way, open streams on the same QUIC connection.
func TestLoopbackConnectReusesConnection(t *testing.T) {
	tn := newLoopbackNet(t, 3, Config{})
	a, b := tn.nodes[1], tn.nodes[2]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c1, d1 := connectPair(t, ctx, a, b)
	c2, d2 := connectPair(t, ctx, a, b)
	e1, f1 := connectPair(t, ctx, b, a)
	require.Same(t, c1.pc, c2.pc)
	require.Same(t, d1.pc, d2.pc)
	require.Same(t, d1.pc, e1.pc)
	require.Same(t, c1.pc, f1.pc)
	for _, c := range []*Conn{c1, c2, e1} {
		_, err := c.Write([]byte("ping"))
		require.NoError(t, err)
	}
	for _, c := range []*Conn{d1, d2, f1} {
		buf := make([]byte, 4)
		_, err := io.ReadFull(c, buf)
		require.NoError(t, err)
		require.Equal(t, "ping", string(buf))
	}
}

// TestLoopbackConnectSimultaneous: both nodes Connect to each other at the
// same moment, several times over; they end up with one connection.
func TestLoopbackConnectSimultaneous(t *testing.T) {
	tn := newLoopbackNet(t, 4, Config{})
	a, b := tn.nodes[2], tn.nodes[3]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Accept everything on both sides.
	for _, nd := range []*Node{a, b} {
		go func() {
			for {
				c, err := nd.AcceptContext(ctx)
				if err != nil {
					return
				}
				go io.Copy(c, c)
			}
		}()
	}
	type res struct {
		c   *Conn
		err error
	}
	out := make(chan res, 8)
	for range 4 {
		go func() { c, err := a.Connect(ctx, b.ID()); out <- res{c, err} }()
		go func() { c, err := b.Connect(ctx, a.ID()); out <- res{c, err} }()
	}
	var fromA, fromB []*Conn
	for range 8 {
		r := <-out
		require.NoError(t, r.err)
		if r.c.LocalAddr().(*Addr).ID == a.ID() {
			fromA = append(fromA, r.c)
		} else {
			fromB = append(fromB, r.c)
		}
	}
	for _, c := range fromA[1:] {
		require.Same(t, fromA[0].pc, c.pc)
	}
	for _, c := range fromB[1:] {
		require.Same(t, fromB[0].pc, c.pc)
	}
	// The two ends are the same QUIC connection.
	require.Equal(t, fromA[0].pc.qc.LocalAddr().String(), fromB[0].pc.qc.RemoteAddr().String())
	for _, c := range append(fromA, fromB...) {
		_, err := c.Write([]byte("x"))
		require.NoError(t, err)
		var b [1]byte
		_, err = io.ReadFull(c, b[:])
		require.NoError(t, err)
	}
}

// TestLoopbackConnectUnknownID: a Connect to an ID no node has fails within
// the context's deadline with ErrUnreachable.
func TestLoopbackConnectUnknownID(t *testing.T) {
	tn := newLoopbackNet(t, 3, Config{})
	var ghost ID
	rand.Read(ghost[:])
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := tn.nodes[1].Connect(ctx, ghost)
	require.Error(t, err)
	require.True(t, errors.Is(err, ErrUnreachable), "%v", err)
	var oe *net.OpError
	require.ErrorAs(t, err, &oe)
	require.Equal(t, "dial", oe.Op)
	require.NoError(t, ctx.Err(), "Connect took the whole deadline")
}

// TestLoopbackConnectWrongIdentity: a QUIC handshake with a node that is not
// the expected ID is refused with ErrPeerIdentity.
func TestLoopbackConnectWrongIdentity(t *testing.T) {
	tn := newLoopbackNet(t, 3, Config{})
	a, b, c := tn.nodes[0], tn.nodes[1], tn.nodes[2]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// a dials b's socket, but expects c's ID.
	qc, err := a.sock.Transport().Dial(ctx, b.UDPAddr(), a.clientTLS(c.ID()), quicConfig())
	if qc != nil {
		qc.CloseWithError(0, "")
	}
	require.Error(t, err)
	require.True(t, isIdentityErr(err), "%v", err)
	require.ErrorIs(t, a.handshakeErr(ctx, err), ErrPeerIdentity)
	// The same dial expecting b's ID works.
	qc, err = a.sock.Transport().Dial(ctx, b.UDPAddr(), a.clientTLS(b.ID()), quicConfig())
	require.NoError(t, err)
	id, err := connPeer(qc)
	require.NoError(t, err)
	require.Equal(t, b.ID(), id)
	qc.CloseWithError(0, "")
}

// TestLoopbackConnectConfiguredRelay: with ForceRelay and a TURN server named
// in Config.Relays (a real pion/turn server on loopback), the connection
// runs through that relay, both sides say so, and data is intact.
func TestLoopbackConnectConfiguredRelay(t *testing.T) {
	before := runtime.NumGoroutine()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	relay, err := nat.NewRelay(nat.RelayConfig{PacketConn: pc})
	require.NoError(t, err)
	t.Cleanup(func() { relay.Close() })
	user, pass := relay.Credentials(time.Hour)
	relayURL := (&url.URL{Scheme: "turn", User: url.UserPassword(user, pass), Host: pc.LocalAddr().String()}).String()

	tn := newLoopbackNet(t, 2, Config{})
	a := tn.add(Config{ListenAddr: "127.0.0.1:0", Bootstrap: []string{tn.nodes[0].UDPAddr().String()},
		ForceRelay: true, Relays: []string{relayURL}})
	b := tn.nodes[1]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ca, cb := connectPair(t, ctx, a, b)
	require.True(t, ca.Path().Relayed)
	require.True(t, cb.Path().Relayed)
	require.Equal(t, 1, relay.Allocations())
	data := make([]byte, 1<<20)
	rand.Read(data)
	go func() {
		ca.Write(data)
		ca.CloseWrite()
	}()
	got, err := io.ReadAll(cb)
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got))
	// Nothing of the relayed path (transport, ICE connection and agent,
	// allocation) outlives the nodes.
	tn.close()
	relay.Close()
	requireNoLeftGoroutines(t, before)
}

// TestLoopbackConnectNetworkRelay: a node with ForceRelay and no configured
// relay uses the TURN relay a public node of the network offers.
func TestLoopbackConnectNetworkRelay(t *testing.T) {
	tn := newLoopbackNet(t, 1, Config{RelayAddr: "127.0.0.1:0"})
	entry := []string{tn.nodes[0].UDPAddr().String()}
	a := tn.add(Config{ListenAddr: "127.0.0.1:0", Bootstrap: entry, ForceRelay: true})
	b := tn.add(Config{ListenAddr: "127.0.0.1:0", Bootstrap: entry})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ca, cb := connectPair(t, ctx, a, b)
	require.True(t, ca.Path().Relayed)
	require.True(t, cb.Path().Relayed)
	require.Equal(t, 1, tn.nodes[0].Info().Streams.Allocations)
	require.Equal(t, 1, a.Info().Streams.RelayedConns)
	_, err := ca.Write([]byte("hi"))
	require.NoError(t, err)
	buf := make([]byte, 2)
	_, err = io.ReadFull(cb, buf)
	require.NoError(t, err)
}

// TestLoopbackSignallingHostileInput: malformed signalling and relay
// messages are dropped and counted; a retransmitted offer gets the same
// answer; a peer cannot hold more than a few ICE sessions open at once.
func TestLoopbackSignallingHostileInput(t *testing.T) {
	tn := newLoopbackNet(t, 3, Config{})
	a, b := tn.nodes[1], tn.nodes[2]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	send := func(service byte, msg []byte) []byte {
		t.Helper()
		reply, _, err := a.ov.SendService(ctx, service, msg, b.ID().Key(), false)
		require.NoError(t, err)
		return reply
	}
	for _, bad := range [][]byte{{}, {0x01}, {0x02, 0x01}, bytes.Repeat([]byte{0xFF}, 300)} {
		require.Empty(t, send(wire.ServiceSignal, bad))
		require.Empty(t, send(wire.ServiceRelay, bad))
	}
	require.EqualValues(t, 8, b.Info().Streams.BadSignals)

	offer := func(id byte) wire.Signal {
		msg, err := wire.AppendSignal(nil, wire.Signal{Kind: wire.SignalOffer, Session: [8]byte{id},
			Ufrag: "abcdefgh", Pwd: "abcdefghijklmnopqrstuvwxyz"})
		require.NoError(t, err)
		ans, err := wire.ParseSignal(send(wire.ServiceSignal, msg))
		require.NoError(t, err)
		return ans
	}
	first := offer(1)
	require.Equal(t, wire.SignalAnswer, first.Kind)
	require.Equal(t, first, offer(1), "a retransmitted offer gets the same answer")
	for id := byte(2); id <= maxSessionsPerPeer; id++ {
		require.Equal(t, wire.SignalAnswer, offer(id).Kind)
	}
	busy := offer(maxSessionsPerPeer + 1)
	require.Equal(t, wire.SignalReject, busy.Kind)
	require.Equal(t, wire.RejectBusy, busy.Reason)
}
