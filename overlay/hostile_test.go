package overlay_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/internal/testnet/ovnet"
	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/overlay"
)

// rawSender sends hand-made frames to a node from a plain UDP socket.
type rawSender struct {
	t    *testing.T
	pc   net.PacketConn
	to   net.Addr
	priv ed25519.PrivateKey
	id   [32]byte
	net  [8]byte
}

func newRawSender(t *testing.T, to *ovnet.Node) *rawSender {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { pc.Close() })
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	s := &rawSender{t: t, pc: pc, to: to.Sock.LocalAddr(), priv: priv, net: wire.NetworkTag(to.Network())}
	copy(s.id[:], priv.Public().(ed25519.PublicKey))
	return s
}

func (s *rawSender) send(b []byte) {
	_, err := s.pc.WriteTo(b, s.to)
	require.NoError(s.t, err)
}

// message builds a single-fragment route frame to dest (an ID, or a key if
// byKey) signed by signer.
func (s *rawSender) message(dest overlay.Key, byKey bool, payload []byte, ts time.Time, signer ed25519.PrivateKey) []byte {
	h := wire.MsgHeader{Kind: wire.KindData, Mode: wire.ModeID, Origin: s.id, Dest: dest, Timestamp: ts.UnixMilli(), Length: uint32(len(payload))}
	if byKey {
		h.Mode = wire.ModeKey
	}
	rand.Read(h.MsgID[:])
	r := wire.Route{FragCount: 1, Msg: h, Chunk: payload}
	copy(r.Sig[:], ed25519.Sign(signer, h.Signed(s.net, payload)))
	return r.Append(wire.AppendHeader(nil, wire.Header{Type: wire.TypeRoute, Net: s.net, Sender: s.id}))
}

func TestLoopbackHostileInputIsDroppedAndCounted(t *testing.T) {
	testnet.CheckLeaks(t)
	tn := loopback(t, 3, overlay.Config{})
	target := tn.Nodes[1]
	s := newRawSender(t, target)
	counters := func() overlay.Counters { return target.Info().Counters }
	eventually := func(what string, cond func(c overlay.Counters) bool) {
		t.Helper()
		testnet.Eventually(t, 5*time.Second, what, func() bool { return cond(counters()) })
	}

	// Garbage in the overlay's first-byte range.
	garbage := make([]byte, 100)
	rand.Read(garbage)
	garbage[0] = wire.TypeRoute
	garbage[1] = wire.Version + 1 // a random byte here was the right version 1 run in 128, and the frame then counted as another network's
	s.send(garbage)
	eventually("malformed", func(c overlay.Counters) bool { return c.DroppedMalformed >= 1 })

	// A frame of another network.
	other := wire.NetworkTag("other")
	s.send(wire.Ping{Nonce: 1}.Append(wire.AppendHeader(nil, wire.Header{Type: wire.TypePing, Net: other, Sender: s.id})))
	eventually("wrong network", func(c overlay.Counters) bool { return c.DroppedWrongNet >= 1 })

	// Oversized.
	big := make([]byte, 1400)
	copy(big, wire.AppendHeader(nil, wire.Header{Type: wire.TypeRoute, Net: s.net, Sender: s.id}))
	s.send(big)
	eventually("oversized", func(c overlay.Counters) bool { return c.DroppedOversized >= 1 })

	// A message whose From is forged: signed by a key that is not the sender's.
	_, mallory, _ := ed25519.GenerateKey(rand.Reader)
	s.send(s.message(target.ID().Key(), false, []byte("forged"), time.Now(), mallory))
	eventually("forged", func(c overlay.Counters) bool { return c.DroppedForged >= 1 })

	// A stale message (signed an hour ago) is refused as a replay.
	s.send(s.message(target.ID().Key(), false, []byte("stale"), time.Now().Add(-time.Hour), s.priv))
	eventually("stale", func(c overlay.Counters) bool { return c.DroppedReplayed >= 1 })

	// A valid message sent twice is delivered once.
	replayed := counters().DroppedReplayed
	valid := s.message(target.ID().Key(), false, []byte("once"), time.Now(), s.priv)
	s.send(valid)
	r := tn.expect([]byte("once"))
	require.Equal(t, target.ID(), r.at)
	require.Equal(t, overlay.ID(s.id), r.msg.From)
	s.send(valid)
	eventually("replayed", func(c overlay.Counters) bool { return c.DroppedReplayed > replayed })
	require.Equal(t, uint64(1), counters().MessagesReceived)
	select {
	case r := <-tn.got:
		require.NotEqual(t, "once", string(r.msg.Data), "a replayed message was delivered twice")
	default:
	}
	c := counters()
	require.Equal(t, c.DroppedMalformed+c.DroppedWrongNet+c.DroppedForged+c.DroppedReplayed+c.DroppedOversized+
		c.DroppedQueueFull+c.DroppedUnknownPeer+c.DroppedNoRoute+c.DroppedBusy+c.DroppedBusyAcks+c.DroppedNoWork+c.DroppedUndecryptable+
		c.DroppedSourceShare+c.DroppedRateLimited+c.DroppedUnpaid, c.Dropped, "Dropped is the sum of the reasons")
	require.Positive(t, c.Dropped)
}
