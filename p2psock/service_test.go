package p2psock

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/overlay"
	"github.com/stretchr/testify/require"
)

// Services built on the overlay get request and reply in one acknowledged
// round trip, and their messages never reach RecvFrom.
func TestLoopbackServiceRequestReply(t *testing.T) {
	tn := newLoopbackNet(t, 20, Config{})
	for _, n := range tn.nodes {
		self := n.ID()
		n.Overlay().Handle(wire.ServiceDHT, func(m overlay.Message) ([]byte, bool) {
			if bytes.HasPrefix(m.Data, []byte("big")) {
				return bytes.Repeat([]byte{'x'}, 20000), true
			}
			return append(append([]byte{}, self[:]...), m.Data...), true
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 30 {
		var key Key
		rand.Read(key[:])
		from := tn.nodes[mrand(len(tn.nodes))]
		req := fmt.Appendf(nil, "request %d", i)
		reply, by, err := from.Overlay().SendService(ctx, wire.ServiceDHT, req, key, true)
		require.NoError(t, err)
		want := closestID(tn.nodes, key)
		require.Equal(t, want, ID(by), "answered by the node closest to the key")
		require.Equal(t, want[:], reply[:32], "the reply is the handler's")
		require.Equal(t, req, reply[32:])
	}
	// A reply of several fragments comes back whole, also from a node to itself.
	for _, to := range []*Node{tn.nodes[5], tn.nodes[0]} {
		reply, _, err := tn.nodes[0].Overlay().SendService(ctx, wire.ServiceDHT, []byte("big"), to.ID().Key(), false)
		require.NoError(t, err)
		require.Equal(t, bytes.Repeat([]byte{'x'}, 20000), reply)
	}
	// No handler for a service: a clear error, from the network or locally.
	for _, to := range []*Node{tn.nodes[7], tn.nodes[3]} {
		_, _, err := tn.nodes[3].Overlay().SendService(ctx, 200, []byte("?"), to.ID().Key(), false)
		require.ErrorIs(t, err, ErrNoService)
		require.NotErrorIs(t, err, context.DeadlineExceeded)
	}
	select {
	case r := <-tn.got:
		t.Fatalf("a service message reached RecvFrom: %q", r.msg.Data)
	default:
	}
}
