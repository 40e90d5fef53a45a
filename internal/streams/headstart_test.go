package streams

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/internal/testnet/ovnet"
	"github.com/p2psock/p2psock/overlay"
)

// noSTUNConn is a UDP socket that drops every STUN packet it receives
// (first byte 0x00–0x03): ICE checks to it, and the answers to its own,
// never arrive, while the overlay and circuits work. It is a host whose
// ICE finds no pair.
type noSTUNConn struct {
	net.PacketConn
	dropped atomic.Uint64
}

func (c *noSTUNConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil || n == 0 || p[0] > 3 {
			return n, addr, err
		}
		c.dropped.Add(1)
	}
}

// startNoSTUN starts node i on a noSTUNConn, joined through entry; it
// closes at the end of the test.
func startNoSTUN(t *testing.T, i int, entry string) (*node, *noSTUNConn) {
	t.Helper()
	pc, err := net.ListenPacket("udp", testnet.LoopbackAddr(i))
	require.NoError(t, err)
	conn := &noSTUNConn{PacketConn: pc}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	var eng *Engine
	nd, err := ovnet.Open(overlay.Config{Identity: priv, Logger: testnet.Logger(t)}, "", conn,
		func(nd *ovnet.Node) error {
			e, err := New(Config{Identity: priv, Logger: testnet.Logger(t)}, nd.Overlay, nd.Sock)
			if err != nil {
				return err
			}
			eng = e
			nd.Closers = append(nd.Closers, func() error { e.Close(); return nil })
			return nil
		})
	require.NoError(t, err)
	t.Cleanup(func() { nd.Close() })
	require.NoError(t, eng.Start())
	require.NoError(t, nd.Bind([]string{entry}))
	return &node{Node: nd, eng: eng}, conn
}

// current returns a's connection to b.
func current(a, b *node) *peerConn {
	a.eng.mu.Lock()
	defer a.eng.mu.Unlock()
	return a.eng.peers[b.ID()]
}

// TestLoopbackICEGivesWay: when ICE finds no pair (the peer drops every
// STUN packet) and a public node can relay, Dial does not wait for ICE to
// fail: the attempt gives way to a circuit after its head start, so no ICE
// session of the dialling node ends in failure, and the connection runs
// over a circuit, stream intact.
func TestLoopbackICEGivesWay(t *testing.T) {
	nodes := newNet(t, 2, nil)
	relay, a := nodes[0], nodes[1]
	b, conn := startNoSTUN(t, 2, relay.Addr())
	testnet.Eventually(t, 20*time.Second, "a public contact to relay", func() bool {
		return len(a.eng.circuitRelays(b.ID())) > 0 && len(b.eng.circuitRelays(a.ID())) > 0
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sa, sb := pair(t, ctx, a, b)
	echoed(t, sa, sb)
	require.NotNil(t, current(a, b).circ, "the connection runs over a circuit")
	require.Positive(t, conn.dropped.Load(), "ICE checks were tried")
	require.Zero(t, a.eng.Counters().NoPath, "no ICE session failed before the circuit")
	require.Zero(t, relay.eng.Counters().NoPath)
}

// TestLoopbackHardNATsGoStraightToCircuit: when both nodes' NATs map per
// destination (the answer says HardNAT and so does this node), ICE cannot
// work between them: the connection goes through a circuit at once, even
// though (on loopback) a direct path exists, and the circuit then finds it.
func TestLoopbackHardNATsGoStraightToCircuit(t *testing.T) {
	hard := func() bool { return true }
	nodes := newNet(t, 3, nil)
	relay, a, b := nodes[0], nodes[1], nodes[2]
	a.eng.hardNAT, b.eng.hardNAT = hard, hard
	testnet.Eventually(t, 20*time.Second, "a public contact to relay", func() bool {
		return len(a.eng.circuitRelays(b.ID())) > 0 && len(b.eng.circuitRelays(a.ID())) > 0
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sa, sb := pair(t, ctx, a, b)
	echoed(t, sa, sb)
	require.NotNil(t, current(a, b).circ, "the connection runs over a circuit")
	require.Equal(t, 1, relay.eng.Counters().Circuits)
	require.Zero(t, a.eng.Counters().NoPath)
	testnet.Eventually(t, 20*time.Second, "the circuit to find the direct path", func() bool {
		return !sa.Path().Relayed && !sb.Path().Relayed
	})
	echoed(t, sa, sb)
}
