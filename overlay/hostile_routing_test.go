package overlay_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/internal/testnet/hostile"
	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/overlay"
)

// A fifth of the nodes are hostile: they acknowledge the fragments they
// should forward and drop them, sign refusals of the messages they dropped,
// answer lookups only with each other, and swallow the messages to keys they
// are the closest to. Every message by ID still reaches its destination, and
// messages to keys reach the honest node closest to the key.
func TestHostileNodesAreRoutedAround(t *testing.T) {
	testnet.CheckLeaks(t)
	nw, err := hostile.Build(hostile.Options{N: 30, Hostile: 0.2, Behave: hostile.All, Config: overlay.Config{Logger: testnet.Logger(t)}})
	require.NoError(t, err)
	t.Cleanup(nw.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	nw.Settle(ctx)

	r := nw.Measure(ctx, hostile.Plan{SendTo: 20, SendToKey: 40, Timeout: 20 * time.Second})
	for _, f := range r.Failures {
		t.Log(f)
	}
	t.Logf("SendTo %d/%d, SendToKey exact %d/%d", r.SendToOK, r.SendTo, r.SendToKeyExact, r.SendToKey)
	require.Equal(t, 20, r.SendTo)
	require.Equal(t, 40, r.SendToKey)
	require.Equal(t, r.SendTo, r.SendToOK, "messages by ID that did not reach their destination")
	require.GreaterOrEqual(t, r.SendToKeyExact, 38, "messages to keys delivered to the closest honest node (95 %)")
}

// A message to a key handed straight to a node (ModeKeyDirect) is taken by
// that node, though it knows nodes closer to the key, when its origin sent
// it; one that a forwarder passes on is dropped and counted.
func TestLoopbackKeyMessageHandedStraightIsTakenOnlyFromItsOrigin(t *testing.T) {
	testnet.CheckLeaks(t)
	tn := loopback(t, 4, overlay.Config{})
	target := tn.Nodes[1]
	s := newRawSender(t, target)
	key := target.ID().Key()
	key[0] ^= 0x80 // far from target: its contacts are closer
	handed := func(hops uint8, payload string) []byte {
		h := wire.MsgHeader{Kind: wire.KindData, Mode: wire.ModeKeyDirect, Origin: s.id, Dest: key, Timestamp: time.Now().UnixMilli(), Length: uint32(len(payload))}
		rand.Read(h.MsgID[:])
		r := wire.Route{Hops: hops, FragCount: 1, Msg: h, Chunk: []byte(payload)}
		copy(r.Sig[:], ed25519.Sign(s.priv, h.Signed(s.net, []byte(payload))))
		return r.Append(wire.AppendHeader(nil, wire.Header{Type: wire.TypeRoute, Net: s.net, Sender: s.id}))
	}
	noRoute := target.Info().Counters.DroppedNoRoute
	s.send(handed(1, "passed on"))
	testnet.Eventually(t, 5*time.Second, "a handed message passed on is dropped", func() bool {
		return target.Info().Counters.DroppedNoRoute > noRoute
	})
	s.send(handed(0, "handed"))
	r := tn.expect([]byte("handed"))
	require.Equal(t, target.ID(), r.at)
	require.True(t, r.msg.ByKey)
	require.Equal(t, key, r.msg.To)
	require.Equal(t, uint64(1), target.Info().Counters.MessagesReceived, "the message passed on was delivered")
}
