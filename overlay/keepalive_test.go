package overlay_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/overlay"
)

// Idle public nodes check their contacts' liveness at most 16 times per
// Liveness interval each, whatever their table's size: a network of 40
// nodes, each with 39 contacts, that checked every contact every Liveness
// (as keepalives did) sends about 20 packets per node per second here. A node that crashes is still dropped from every table within the
// stretched interval and its grace.
func TestLoopbackIdleLivenessChecksAreBoundedAndFindTheDead(t *testing.T) {
	testnet.CheckLeaks(t)
	const liveness = 2 * time.Second
	tn := loopback(t, 40, overlay.Config{KeepAlive: time.Second, Liveness: liveness})
	live := tn.Nodes[:len(tn.Nodes)-3]
	crashed := tn.Nodes[len(tn.Nodes)-3:]
	require.Positive(t, contactsAmong(live, crashed), "precondition: the live nodes know the nodes that crash")

	out := func() (sum uint64) {
		for _, n := range tn.Nodes {
			sum += n.Info().Counters.PacketsOut
		}
		return sum
	}
	// A window of four stretched intervals (39 contacts: 2 Liveness).
	const window = 16 * time.Second
	before, start := out(), time.Now()
	<-time.After(window)
	perNode := float64(out()-before) / float64(len(tn.Nodes)) / time.Since(start).Seconds()
	// At most 16 checks per Liveness sent (8 a second), and the checks of
	// this node by its contacts answered, where a contact that checked
	// this node needs no check from it: about 8 packets a second, 12
	// leaves room for pings sent again. Checking every contact every
	// Liveness costs 20 (39 pings and 39 answers per 2 s, less what the
	// two ends of a contact share).
	require.LessOrEqual(t, perNode, 1.5*16/liveness.Seconds(), "packets per idle node per second")
	t.Logf("%.1f packets per idle node per second", perNode)

	for _, n := range crashed {
		require.NoError(t, n.Sock.Close()) // a crash: no leave message
	}
	// 39 contacts: silent for 2 Liveness, then a round of pings for its
	// grace (2 s): 6 s, and what the checks' spacing adds.
	testnet.Eventually(t, 20*time.Second, "the live nodes drop the crashed nodes from their tables", func() bool {
		return contactsAmong(live, crashed) == 0
	})
}
