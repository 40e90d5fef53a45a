package dht

import (
	"crypto/ed25519"
	"crypto/rand"
	"net/netip"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/overlay"
)

// byDistance returns n fresh IDs, nearest to k first.
func byDistance(t *testing.T, k overlay.Key, n int) []overlay.ID {
	t.Helper()
	ids := make([]overlay.ID, n)
	for i := range ids {
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		require.NoError(t, err)
		ids[i] = overlay.ID(pub)
	}
	slices.SortFunc(ids, func(a, b overlay.ID) int { return overlay.CmpDistance(a.Key(), b.Key(), k) })
	return ids
}

// A replica set keeps the lookup's order, in which nodes that other paths
// contradicted come last however close they are, and holds one node per
// subnet; this node is placed among the trusted by its distance and is not
// counted in its subnet.
func TestPickReplicas(t *testing.T) {
	k := overlay.KeyOf([]byte("key"))
	ids := byDistance(t, k, 10) // ids[0] nearest
	addr := func(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
	peer := func(i int, a string) overlay.Peer { return overlay.Peer{ID: ids[i], Addr: addr(a)} }
	tests := []struct {
		name    string
		peers   []overlay.Peer
		trusted int
		self    int
		n       int
		want    []int
	}{
		{"contradicted last though nearest",
			[]overlay.Peer{peer(2, "192.0.2.1:1"), peer(3, "198.51.100.1:1"), peer(0, "203.0.113.1:1"), peer(1, "203.0.114.1:1")},
			2, 9, 4, []int{2, 3, 9, 0}},
		{"self among the trusted by distance",
			[]overlay.Peer{peer(2, "192.0.2.1:1"), peer(4, "198.51.100.1:1"), peer(0, "203.0.113.1:1")},
			2, 3, 3, []int{2, 3, 4}},
		{"one per subnet",
			[]overlay.Peer{peer(0, "192.0.2.1:1"), peer(1, "192.0.2.200:2"), peer(2, "192.0.2.7:3"), peer(5, "198.51.100.1:1"), peer(6, "203.0.113.1:1")},
			5, 9, 3, []int{0, 5, 6}},
		{"self not counted in its subnet; too few subnets: filled in order",
			[]overlay.Peer{peer(0, "127.0.0.1:1000"), peer(2, "127.0.0.1:2000")},
			2, 1, 6, []int{0, 1, 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := pickReplicas(tc.peers, tc.trusted, ids[tc.self], k, tc.n)
			var want []overlay.ID
			for _, i := range tc.want {
				want = append(want, ids[i])
			}
			require.Equal(t, want, got)
		})
	}
}
