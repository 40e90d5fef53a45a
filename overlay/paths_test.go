package overlay

import (
	"crypto/ed25519"
	"crypto/rand"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The path cache lives long (pathsTTL covers the liveness interval), so it
// is bounded: nodes proved while their bucket is full are cached up to
// 16·K, no more, and the node proved last always has its path known (a
// link waiting for its proof reads it from there): it takes the place of
// the path used longest ago.
func TestPathCacheBounded(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	o := newFakeNet().add(t, priv, netip.MustParseAddrPort("192.0.2.1:4000"), 1)
	defer o.Close()
	o.mu.Lock()
	defer o.mu.Unlock()
	var first ID
	for i := range 1000 {
		var id ID
		rand.Read(id[:])
		p := path{addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 4000)}
		o.upsertLocked(id, p, true, time.Millisecond)
		got, _, ok := o.knownPathLocked(id)
		require.True(t, ok, "node %d: the path just proved is known", i)
		require.Equal(t, p, got)
		if _, cached := o.paths[id]; cached && first == (ID{}) {
			first = id
		}
	}
	require.Equal(t, o.maxPaths(), len(o.paths), "the cache fills to its bound and no further")
	require.NotContains(t, o.paths, first, "the path cached first, used longest ago, made room")
}

// Known holds the addresses answers are awaited from, in a set of their own:
// a liveness check's Ping adds one and its answer takes it away without a
// rebuild of the set of direct links, which holds hundreds.
func TestKnownFollowsAwaitedAddresses(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	o := newFakeNet().add(t, priv, netip.MustParseAddrPort("192.0.2.1:4000"), 1)
	defer o.Close()
	a := netip.MustParseAddrPort("198.51.100.7:4000")
	o.housekeep(time.Now())
	require.False(t, o.Known(a))
	o.mu.Lock()
	built := o.knownBuilt
	o.awaitLocked(path{addr: a}, 1)
	o.mu.Unlock()
	o.housekeep(time.Now())
	require.True(t, o.Known(a), "an awaited address is known")
	o.mu.Lock()
	o.awaitLocked(path{addr: a}, -1)
	o.mu.Unlock()
	o.housekeep(time.Now())
	require.False(t, o.Known(a), "no longer awaited, not known")
	o.mu.Lock()
	defer o.mu.Unlock()
	require.Equal(t, built, o.knownBuilt, "the set of direct links was not rebuilt")
}

// BenchmarkFindAnswer is the work of answering one Find (closestNamedLocked)
// on a node with K = 20, its table filled from 5,000 public nodes on
// distinct /24s and its path cache full (320 verified paths): what a
// stranger's Find costs the node it asks.
func BenchmarkFindAnswer(b *testing.B) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(b, err)
	o := newFakeNet().add(b, priv, netip.MustParseAddrPort("192.0.2.1:4000"), 20)
	defer o.Close()
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := range 5000 {
		var id ID
		rand.Read(id[:])
		o.upsertLocked(id, path{addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{11, byte(i >> 8), byte(i), 1}), 4000)}, true, time.Millisecond)
	}
	require.Equal(b, o.maxPaths(), len(o.paths), "the path cache is full")
	targets := make([]Key, 64)
	for i := range targets {
		rand.Read(targets[i][:])
	}
	var sender ID
	rand.Read(sender[:])
	i := 0
	for b.Loop() {
		o.closestNamedLocked(targets[i%len(targets)], sender, 20)
		i++
	}
}
