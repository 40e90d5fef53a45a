package streams

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
)

// The QUIC listener on a node's socket opens when it is first needed: a
// node nobody has offered a connection to has none (engine.go, listen).

// TestLoopbackListenerOpensOnOffer: after the network is built no engine
// listens; a peer's offer opens the answering node's listener, in time for
// the peer's QUIC handshake, and leaves a node that took no part without
// one.
func TestLoopbackListenerOpensOnOffer(t *testing.T) {
	nodes := newNet(t, 3, nil)
	for i, nd := range nodes {
		require.False(t, nd.eng.listening.Load(), "node %d listens before any offer", i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, b := pair(t, ctx, nodes[0], nodes[1])
	defer a.Close()
	defer b.Close()
	_, err := a.Write([]byte("ping"))
	require.NoError(t, err)
	buf := make([]byte, 4)
	_, err = b.Read(buf)
	require.NoError(t, err)
	require.Equal(t, "ping", string(buf))
	require.True(t, nodes[1].eng.listening.Load(), "the answering node opened its listener")
	require.False(t, nodes[2].eng.listening.Load(), "a node without offers opened its listener")
}

// TestLoopbackListenerOpensOnFirstHandshakePacket: a QUIC client that
// dials a node's socket without an offer (nothing announced it) is
// admitted: its first Initial opens the listener before quic-go handles
// that packet, and the handshake completes.
func TestLoopbackListenerOpensOnFirstHandshakePacket(t *testing.T) {
	nodes := newNet(t, 2, nil)
	nd := nodes[1]
	require.False(t, nd.eng.listening.Load())

	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	cert, err := certificate(priv)
	require.NoError(t, err)
	uc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	tr := &quic.Transport{Conn: uc}
	defer uc.Close()
	defer tr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	qc, err := tr.Dial(ctx, nd.Sock.LocalAddr(), clientTLS(cert, nd.ID()), &quic.Config{})
	require.NoError(t, err)
	defer qc.CloseWithError(0, "")
	require.True(t, nd.eng.listening.Load())
	testnet.Eventually(t, 10*time.Second, "the connection to be adopted", func() bool {
		return nd.eng.Counters().Conns == 1
	})
}
