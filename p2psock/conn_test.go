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
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
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
	// The goroutines report their results (a digest, or an error) on
	// channels; the test goroutine asserts on them.
	type digest struct {
		sum [32]byte
		n   int64
		err error
	}
	send := func(c *Conn) <-chan digest {
		ch := make(chan digest, 1)
		go func() {
			h := sha256.New()
			buf := make([]byte, 64<<10)
			var d digest
			for sent := 0; sent < size; sent += len(buf) {
				rand.Read(buf)
				h.Write(buf)
				if _, d.err = c.Write(buf); d.err != nil {
					break
				}
				d.n += int64(len(buf))
			}
			if d.err == nil {
				d.err = c.CloseWrite()
			}
			copy(d.sum[:], h.Sum(nil))
			ch <- d
		}()
		return ch
	}
	recv := func(c *Conn) <-chan digest {
		ch := make(chan digest, 1)
		go func() {
			h := sha256.New()
			var d digest
			d.n, d.err = io.Copy(h, c)
			copy(d.sum[:], h.Sum(nil))
			ch <- d
		}()
		return ch
	}
	sa, sb := send(ca), send(cb)
	ra, rb := recv(ca), recv(cb)
	for _, p := range [][2]<-chan digest{{sa, rb}, {sb, ra}} {
		sent, got := <-p[0], <-p[1]
		require.NoError(t, sent.err, "sending")
		require.NoError(t, got.err, "receiving")
		require.EqualValues(t, size, sent.n)
		require.EqualValues(t, size, got.n)
		require.Equal(t, sent.sum, got.sum)
	}
	require.NoError(t, ca.Close())
	require.NoError(t, cb.Close())
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

// TestLoopbackConnectConfiguredRelay: with ForceRelay and a TURN server named
// in Config.Relays (a real pion/turn server on loopback), the connection
// runs through that relay, both sides say so, and data is intact.
func TestLoopbackConnectConfiguredRelay(t *testing.T) {
	testnet.CheckLeaks(t) // the relay's goroutines too
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
	wrote := make(chan error, 1)
	go func() {
		_, err := ca.Write(data)
		if err == nil {
			err = ca.CloseWrite()
		}
		wrote <- err
	}()
	got, err := io.ReadAll(cb)
	require.NoError(t, err)
	require.NoError(t, <-wrote)
	require.True(t, bytes.Equal(data, got))
	// Nothing of the relayed path (transport, ICE connection and agent,
	// allocation) outlives the nodes: the leak check runs after the nodes
	// and the relay have closed.
}

// TestLoopbackConnectNetworkRelay: a node with ForceRelay and no configured
// relay uses the TURN relay a public node of the network offers.
func TestLoopbackConnectNetworkRelay(t *testing.T) {
	tn := newLoopbackNet(t, 1, Config{RelayAddr: ":0"}) // on the node's own address
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
	// The relay counted what it moved, both ways (the metrics' relay bytes).
	in, out := tn.nodes[0].eng.RelayBytes()
	require.Positive(t, in)
	require.Positive(t, out)
}

// TestLoopbackConnReset: a stream the peer resets fails on this side with
// ErrReset, for reads and for writes, where Close would have ended it with
// io.EOF; and the reset happens even when this side had written and
// half-closed already (the bytes were not read).
func TestLoopbackConnReset(t *testing.T) {
	tn := newLoopbackNet(t, 2, Config{})
	a, b := tn.nodes[0], tn.nodes[1]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ca, cb := connectPair(t, ctx, a, b)
	defer ca.Close()
	_, err := ca.Write([]byte("never read"))
	require.NoError(t, err)
	require.NoError(t, ca.CloseWrite())
	cb.Reset()
	_, err = io.ReadAll(ca)
	require.ErrorIs(t, err, ErrReset)
	require.True(t, strings.HasSuffix(err.Error(), b.ID().String()+": p2psock: stream reset by peer"), err.Error())
	require.Eventually(t, func() bool {
		_, err := ca.Write([]byte("x"))
		return errors.Is(err, ErrReset)
	}, 10*time.Second, 10*time.Millisecond)
	_, err = cb.Read(make([]byte, 1))
	require.ErrorIs(t, err, net.ErrClosed)
}
