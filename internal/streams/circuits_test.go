package streams

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/overlay"
)

// circuitPair connects a to b through a circuit (whatever paths they have)
// and returns both ends of a stream on it.
func circuitPair(t *testing.T, ctx context.Context, a, b *node) (*Stream, *Stream) {
	t.Helper()
	testnet.Eventually(t, 20*time.Second, "a public contact to relay", func() bool {
		return len(a.eng.circuitRelays(b.ID())) > 0 && len(b.eng.circuitRelays(a.ID())) > 0
	})
	pc, err := a.eng.circuitAttempt(ctx, b.ID())
	require.NoError(t, err)
	require.True(t, a.eng.adopt(pc))
	return pair(t, ctx, a, b)
}

// stayRelayed keeps the connections of nodes 1 and 2 on their circuits
// (ForceRelay: no search for a direct path).
func stayRelayed(i int, c *Config) { c.ForceRelay = i > 0 }

// TestLoopbackCircuit: two nodes connect through a circuit on a third,
// default-configured one, and exchange 1 MiB each way intact; the relay
// counts the circuit and the bytes it forwarded.
func TestLoopbackCircuit(t *testing.T) {
	nodes := newNet(t, 3, stayRelayed)
	relay, a, b := nodes[0], nodes[1], nodes[2]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sa, sb := circuitPair(t, ctx, a, b)
	require.True(t, sa.Path().Relayed)
	require.True(t, sb.Path().Relayed)
	require.Equal(t, relay.Addr(), sa.Path().Remote.String(), "QUIC runs to the relay's address")

	msg := make([]byte, 1<<20)
	rand.Read(msg)
	go func() {
		io.Copy(sb, sb)
		sb.Close()
	}()
	go func() {
		sa.Write(msg)
		sa.CloseWrite()
	}()
	got, err := io.ReadAll(sa)
	require.NoError(t, err)
	require.True(t, bytes.Equal(msg, got))
	c := relay.eng.Counters()
	require.Equal(t, 1, c.Circuits)
	require.Greater(t, c.RelayedBytes, uint64(2*len(msg)))
	require.Equal(t, 1, a.eng.Counters().RelayedConns)
}

// TestLoopbackCircuitStrangers: Circuit frames from an address that is no
// end of the circuit, or for no circuit, are dropped and counted; the relay
// forwards nothing of them (no amplification, no reflection to the ends).
func TestLoopbackCircuitStrangers(t *testing.T) {
	nodes := newNet(t, 3, stayRelayed)
	relay, a, b := nodes[0], nodes[1], nodes[2]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sa, sb := circuitPair(t, ctx, a, b)
	echoed(t, sa, sb)
	var id [8]byte
	relay.eng.circ.mu.Lock()
	for k := range relay.eng.circ.relayed {
		id = k
	}
	relay.eng.circ.mu.Unlock()

	v := newVictim(t, testnet.DistinctLoopbackAddr(201))
	before := relay.eng.Counters()
	to, err := net.ResolveUDPAddr("udp", relay.Addr())
	require.NoError(t, err)
	// A few at a time: a burst past the socket's queue would be dropped
	// there (and counted as socket drops) before the relay saw it.
	const rounds = 40
	for i := range uint64(rounds) {
		_, err = v.pc.WriteTo(wire.AppendCircuitFrame(nil, id, make([]byte, 1000)), to)
		require.NoError(t, err)
		_, err = v.pc.WriteTo(wire.AppendCircuitFrame(nil, [8]byte{1}, make([]byte, 1000)), to)
		require.NoError(t, err)
		_, err = v.pc.WriteTo([]byte{wire.TypeCircuit, 1}, to)
		require.NoError(t, err)
		testnet.Eventually(t, 10*time.Second, "the frames to be counted", func() bool {
			c := relay.eng.Counters()
			return c.CircuitStranger-before.CircuitStranger == i+1 && c.CircuitUnknown-before.CircuitUnknown == i+1 &&
				c.CircuitMalformed-before.CircuitMalformed == i+1
		})
	}
	// Every frame was counted as dropped above. The circuit's own QUIC
	// packets may still cross it meanwhile (the last acknowledgements,
	// keepalives, path MTU probes of up to 1452 bytes: on a loaded machine,
	// whose rounds take long, more than a quarter of the strangers' bytes),
	// so what it relayed is bounded by the strangers' 40 frames of 1009
	// bytes on the live circuit, which forwarding them would have added.
	require.Less(t, relay.eng.Counters().RelayedBytes-before.RelayedBytes, uint64(rounds*1009), "nothing of them forwarded")
	require.Zero(t, v.bytes.Load(), "nothing sent back")
}

// TestLoopbackCircuitJoinRefused: a node relays only for nodes it has a
// direct link with, only while relaying is on, and within its budget of
// circuits; refusals are counted by reason.
func TestLoopbackCircuitJoinRefused(t *testing.T) {
	nodes := newNet(t, 3, func(i int, c *Config) {
		c.MaxRelayedConns = 2
		c.NoRelaying = i == 2
	})
	r, linked, off := nodes[0], nodes[1], nodes[2]
	join := func(e *Engine, from, peer overlay.ID, id [8]byte) wire.CircuitMsg {
		t.Helper()
		reply := e.onCircuitJoin(from, wire.CircuitMsg{Kind: wire.CircuitJoin, Circuit: id, Peer: peer})
		m, err := wire.ParseCircuitMsg(reply)
		require.NoError(t, err)
		return m
	}
	// Relaying off.
	m := join(off.eng, linked.ID(), randomID(), [8]byte{1})
	require.Equal(t, wire.CircuitRefuse, m.Kind)
	require.Equal(t, wire.CircuitNoRelay, m.Reason)
	require.Equal(t, uint64(1), off.eng.Counters().CircuitNoRelay)
	// A stranger: no link with the relay.
	m = join(r.eng, randomID(), linked.ID(), [8]byte{2})
	require.Equal(t, wire.CircuitNoLink, m.Reason)
	require.Equal(t, uint64(1), r.eng.Counters().CircuitNoLink)
	require.Zero(t, r.eng.circ.relayedCount())
	// Within the budget: pending until the peer joins; the ID of a circuit
	// is its ends'.
	peer := off.ID()
	require.Equal(t, wire.CircuitPending, join(r.eng, linked.ID(), randomID(), [8]byte{3}).Kind)
	require.Equal(t, wire.CircuitPending, join(r.eng, linked.ID(), peer, [8]byte{4}).Kind)
	require.Equal(t, wire.CircuitActive, join(r.eng, peer, linked.ID(), [8]byte{4}).Kind)
	m = join(r.eng, peer, randomID(), [8]byte{3})
	require.Equal(t, wire.CircuitBusy, m.Reason)
	// Past the budget.
	m = join(r.eng, peer, linked.ID(), [8]byte{5})
	require.Equal(t, wire.CircuitFull, m.Reason)
	c := r.eng.Counters()
	require.Equal(t, uint64(1), c.CircuitsFull)
	require.Equal(t, uint64(1), c.CircuitBusy)
	require.Equal(t, 1, c.Circuits)
}

// TestCircuitsPerPeerBound: a node that joins more than maxCircuitsPerPeer
// circuits at a relay loses its oldest; others' circuits stay.
func TestCircuitsPerPeerBound(t *testing.T) {
	c := newCircuits(1 << 20)
	var d drops
	addr := netip.MustParseAddrPort("192.0.2.1:1")
	from, other := randomID(), randomID()
	_, _, _ = c.join([8]byte{0xFF}, other, addr, randomID(), 100, &d)
	for i := range maxCircuitsPerPeer + 3 {
		kind, _, _ := c.join([8]byte{byte(i)}, from, addr, randomID(), 100, &d)
		require.Equal(t, wire.CircuitPending, kind)
	}
	require.Equal(t, maxCircuitsPerPeer+1, c.relayedCount())
	require.Equal(t, uint64(3), d.get(dropCircuitEvicted))
	c.mu.Lock()
	defer c.mu.Unlock()
	require.NotNil(t, c.relayed[[8]byte{0xFF}])
	require.Nil(t, c.relayed[[8]byte{0}], "the oldest went first")
}

// TestCircuitBudget: the token bucket passes its rate and no more.
func TestCircuitBudget(t *testing.T) {
	now := time.Now()
	b := tokenBucket{rate: 1000, tokens: 1000, at: now}
	require.True(t, b.take(1000, now))
	require.False(t, b.take(1, now))
	require.True(t, b.take(500, now.Add(500*time.Millisecond)))
	require.False(t, b.take(600, now.Add(time.Second)))
}

// TestLoopbackCircuitUpgrades: a connection that starts over a circuit
// between two nodes that can reach each other moves to the direct path
// while a transfer runs, without breaking its stream: the bytes arrive
// intact, both ends report a direct path, and the relay stops carrying it.
func TestLoopbackCircuitUpgrades(t *testing.T) {
	nodes := newNet(t, 3, nil)
	relay, a, b := nodes[0], nodes[1], nodes[2]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sa, sb := circuitPair(t, ctx, a, b)
	require.True(t, sa.Path().Relayed)

	e := startHalfEcho(t, ctx, sa, sb, 4<<20)
	testnet.Eventually(t, 20*time.Second, "both ends to go direct", func() bool {
		return !sa.Path().Relayed && !sb.Path().Relayed
	})
	e.writeRest()
	require.Equal(t, b.Addr(), sa.Path().Remote.String())
	require.Equal(t, a.Addr(), sb.Path().Remote.String())
	relayedAtSwitch := relay.eng.Counters().RelayedBytes
	e.check()
	require.Less(t, relay.eng.Counters().RelayedBytes-relayedAtSwitch, uint64(e.n/2),
		"the second half did not go through the relay")
}

// halfEcho is a transfer over a stream pair: sb echoes what it reads; sa
// writes the first half of n random bytes at once and the rest when the
// test calls writeRest (once the path it waits for is up).
type halfEcho struct {
	t      *testing.T
	sa     *Stream
	n      int
	msg    []byte
	wrote  chan error
	direct chan struct{}
}

func startHalfEcho(t *testing.T, ctx context.Context, sa, sb *Stream, n int) *halfEcho {
	e := &halfEcho{t: t, sa: sa, n: n, msg: make([]byte, n), wrote: make(chan error, 1), direct: make(chan struct{})}
	rand.Read(e.msg)
	go func() {
		io.Copy(sb, sb)
		sb.Close()
	}()
	go func() {
		_, err := sa.Write(e.msg[:n/2])
		if err == nil {
			select {
			case <-e.direct:
			case <-ctx.Done():
			}
			_, err = sa.Write(e.msg[n/2:])
		}
		sa.CloseWrite()
		e.wrote <- err
	}()
	return e
}

// writeRest lets the second half go.
func (e *halfEcho) writeRest() { close(e.direct) }

// check reads the whole echo and checks it.
func (e *halfEcho) check() {
	e.t.Helper()
	got, err := io.ReadAll(e.sa)
	require.NoError(e.t, err)
	require.NoError(e.t, <-e.wrote)
	require.True(e.t, bytes.Equal(e.msg, got), "%d bytes back of %d", len(got), len(e.msg))
}
