package overlay_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/internal/testnet/ovnet"
	"github.com/p2psock/p2psock/overlay"
)

// The behaviour tests of the routing tier run on overlay nodes without the
// front door (package ovnet, on the project's one harness, internal/testnet).
// A network collects the messages its nodes receive on one channel.

type network struct {
	*testnet.Net[*ovnet.Node]
	in  *testnet.Inbox[received]
	got chan received // in.C
}

type received struct {
	at  overlay.ID
	msg overlay.Message
}

// loopback builds n overlay nodes with cfg on loopback, each joined through a
// random earlier one, and collects their messages. The caller registers the
// leak check first.
func loopback(t testing.TB, n int, cfg overlay.Config) *network {
	t.Helper()
	return collect(t, ovnet.Loopback(t, n, cfg, nil))
}

// collect collects the messages of tn's nodes (and of nodes added later with
// receive) until the end of the test.
func collect(t testing.TB, tn *testnet.Net[*ovnet.Node]) *network {
	in := testnet.NewInbox[received](t)
	t.Cleanup(in.Close) // before the nodes close
	c := &network{Net: tn, in: in, got: in.C}
	for _, nd := range tn.Nodes {
		c.receive(nd)
	}
	return c
}

// receive collects nd's messages.
func (c *network) receive(nd *ovnet.Node) {
	c.in.Collect(func(ctx context.Context) (received, error) {
		m, err := nd.Recv(ctx)
		return received{at: nd.ID(), msg: m}, err
	})
}

// expect waits for the message with payload data and returns where it
// arrived.
func (c *network) expect(data []byte) received {
	return c.in.Expect(func(r received) bool { return slices.Equal(r.msg.Data, data) })
}

// expectFunc waits for a received message that match accepts.
func (c *network) expectFunc(match func(received) bool) received { return c.in.Expect(match) }

func randomKey() overlay.Key {
	var k overlay.Key
	rand.Read(k[:])
	return k
}

// requireExactWithin sends rounds of 100 messages from live nodes to random
// keys until at least 99 of a round reach the XOR-closest live node, and
// fails if that takes longer than limit.
func requireExactWithin(t *testing.T, c *network, live []*ovnet.Node, after string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for round := 1; ; round++ {
		exact := 0
		for i := range 100 {
			from := live[testnet.Intn(len(live))]
			key := randomKey()
			data := fmt.Appendf(nil, "%s round %d message %d", after, round, i)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := from.Send(ctx, data, key, true)
			cancel()
			if err != nil {
				t.Logf("send %d: %v", i, err)
				continue
			}
			if c.expect(data).at == ovnet.Closest(live, key) {
				exact++
			}
		}
		t.Logf("round %d: %d/100 exact", round, exact)
		if exact >= 99 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("routing not exact %v after %s: %d/100", limit, after, exact)
		}
	}
}
