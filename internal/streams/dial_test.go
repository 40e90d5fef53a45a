package streams

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/overlay"
)

// TestLoopbackDialReusesConnection: a second Dial, and a Dial the other way,
// open streams on the same QUIC connection.
func TestLoopbackDialReusesConnection(t *testing.T) {
	nodes := newNet(t, 3, nil)
	a, b := nodes[1], nodes[2]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c1, d1 := pair(t, ctx, a, b)
	c2, d2 := pair(t, ctx, a, b)
	e1, f1 := pair(t, ctx, b, a)
	require.Same(t, c1.pc, c2.pc)
	require.Same(t, d1.pc, d2.pc)
	require.Same(t, d1.pc, e1.pc)
	require.Same(t, c1.pc, f1.pc)
	require.Equal(t, 1, a.eng.Counters().Conns)
	require.Equal(t, 1, b.eng.Counters().Conns)
	for _, s := range []*Stream{c1, c2, e1} {
		_, err := s.Write([]byte("ping"))
		require.NoError(t, err)
	}
	for _, s := range []*Stream{d1, d2, f1} {
		buf := make([]byte, 4)
		_, err := io.ReadFull(s, buf)
		require.NoError(t, err)
		require.Equal(t, "ping", string(buf))
	}
}

// TestLoopbackDialSimultaneous: both nodes Dial each other at the same
// moment, several times over; they end up with one connection.
func TestLoopbackDialSimultaneous(t *testing.T) {
	nodes := newNet(t, 4, nil)
	a, b := nodes[2], nodes[3]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	echoAll(ctx, a)
	echoAll(ctx, b)
	type res struct {
		s    *Stream
		from *node
		err  error
	}
	out := make(chan res, 8)
	for range 4 {
		go func() { s, err := a.eng.Dial(ctx, b.ID()); out <- res{s, a, err} }()
		go func() { s, err := b.eng.Dial(ctx, a.ID()); out <- res{s, b, err} }()
	}
	var fromA, fromB []*Stream
	for range 8 {
		r := <-out
		require.NoError(t, r.err)
		if r.from == a {
			fromA = append(fromA, r.s)
		} else {
			fromB = append(fromB, r.s)
		}
	}
	for _, s := range fromA[1:] {
		require.Same(t, fromA[0].pc, s.pc)
	}
	for _, s := range fromB[1:] {
		require.Same(t, fromB[0].pc, s.pc)
	}
	// The two ends are the same QUIC connection.
	require.Equal(t, fromA[0].pc.qc.LocalAddr().String(), fromB[0].pc.qc.RemoteAddr().String())
	for _, s := range append(fromA, fromB...) {
		_, err := s.Write([]byte("x"))
		require.NoError(t, err)
		var b [1]byte
		_, err = io.ReadFull(s, b[:])
		require.NoError(t, err)
		s.Close()
	}
}

// TestLoopbackSimultaneousOfferResolution: an offer from a peer this node
// is dialling itself is rejected with Conflict if this node's ID is the
// smaller (its own offer goes ahead); otherwise this node's attempt is
// cancelled and the dial passes to the peer's offer, which is answered.
func TestLoopbackSimultaneousOfferResolution(t *testing.T) {
	e := newNet(t, 1, nil)[0].eng
	var low, high overlay.ID
	for i := range high {
		high[i] = 0xFF
	}
	require.True(t, e.yieldsTo(low))
	require.False(t, e.yieldsTo(high))

	ctx := context.Background()
	offer := func(from overlay.ID, session byte) wire.Signal {
		t.Helper()
		ans, err := wire.ParseSignal(e.onOffer(from, wire.Signal{Kind: wire.SignalOffer, Session: [8]byte{session},
			Ufrag: "abcdefgh", Pwd: "abcdefghijklmnopqrstuvwxyz", Candidates: []string{loopCand(9)}}))
		require.NoError(t, err)
		return ans
	}
	for _, tc := range []struct {
		name  string
		peer  overlay.ID
		yield bool
	}{
		{"this node's ID is smaller", high, false},
		{"the peer's ID is smaller", low, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			actx, cancel := context.WithCancel(ctx)
			defer cancel()
			d := &dial{done: make(chan struct{}), cancel: cancel}
			e.mu.Lock()
			e.dials[tc.peer] = d
			e.mu.Unlock()
			defer func() {
				e.mu.Lock()
				if e.dials[tc.peer] == d {
					delete(e.dials, tc.peer)
				}
				e.mu.Unlock()
			}()
			ans := offer(tc.peer, tc.peer[0]^1)
			e.mu.Lock()
			incoming := d.incoming
			e.mu.Unlock()
			if !tc.yield {
				require.Equal(t, wire.SignalReject, ans.Kind)
				require.Equal(t, wire.RejectConflict, ans.Reason)
				require.False(t, incoming)
				require.NoError(t, actx.Err(), "this node's attempt goes on")
				return
			}
			require.Equal(t, wire.SignalAnswer, ans.Kind)
			require.True(t, incoming, "the peer's offer owns the dial")
			require.Error(t, actx.Err(), "this node's attempt was cancelled")
		})
	}
}

// TestLoopbackSignallingHostileInput: malformed signalling and relay
// messages are dropped and counted; a retransmitted offer gets the same
// answer; a peer cannot hold more than a few ICE sessions open at once.
func TestLoopbackSignallingHostileInput(t *testing.T) {
	nodes := newNet(t, 3, nil)
	a, b := nodes[1], nodes[2]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	send := func(service byte, msg []byte) []byte {
		t.Helper()
		reply, _, err := a.SendService(ctx, service, msg, b.ID().Key(), false)
		require.NoError(t, err)
		return reply
	}
	for _, bad := range [][]byte{{}, {0x01}, {0x02, 0x01}, bytes.Repeat([]byte{0xFF}, 300)} {
		require.Empty(t, send(wire.ServiceSignal, bad))
		require.Empty(t, send(wire.ServiceRelay, bad))
	}
	require.EqualValues(t, 8, b.eng.Counters().BadSignals)

	offer := func(id byte) wire.Signal {
		msg, err := wire.AppendSignal(nil, wire.Signal{Kind: wire.SignalOffer, Session: [8]byte{id},
			Ufrag: "abcdefgh", Pwd: "abcdefghijklmnopqrstuvwxyz", Candidates: []string{loopCand(9)}})
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
	require.Equal(t, maxSessionsPerPeer, b.eng.Counters().Sessions)
}
