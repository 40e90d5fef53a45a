package overlay_test

import (
	"math/bits"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/overlay"
)

// bucketOf returns the routing-table bucket of id at a node self: the number
// of leading bits their IDs share.
func bucketOf(self, id overlay.ID) int {
	for i := range self {
		if x := self[i] ^ id[i]; x != 0 {
			return i*8 + bits.LeadingZeros8(x)
		}
	}
	return len(self) * 8
}

// TestLoopbackJoinFillsFarBuckets joins a node to a 40-node loopback network
// with K 4 and checks its table as Join returns: the bucket refresh lookups
// end early, once their bucket holds K contacts, yet every bucket up to the
// node's nearest neighbour's in which the network has nodes holds a
// contact, and none holds more than K.
func TestLoopbackJoinFillsFarBuckets(t *testing.T) {
	testnet.CheckLeaks(t)
	const k = 4
	tn := loopback(t, 40, overlay.Config{K: k})
	nd := tn.Add()
	inNetwork := map[int]int{}
	for _, o := range tn.Nodes {
		if o != nd {
			inNetwork[bucketOf(nd.ID(), o.ID())]++
		}
	}
	inTable := map[int]int{}
	deepest := -1
	for _, c := range nd.Table() {
		inTable[c.Bucket]++
		deepest = max(deepest, c.Bucket)
	}
	require.GreaterOrEqual(t, deepest, 0, "no contacts")
	for b := range deepest {
		require.GreaterOrEqual(t, inTable[b], min(1, inNetwork[b]), "bucket %d: %d contacts, the network has %d nodes there (table %v)", b, inTable[b], inNetwork[b], inTable)
		require.LessOrEqual(t, inTable[b], k, "bucket %d (table %v)", b, inTable)
	}
}
