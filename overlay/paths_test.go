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
// 16·K, no more.
func TestPathCacheBounded(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	o := newFakeNet().add(t, priv, netip.MustParseAddrPort("192.0.2.1:4000"), 1)
	defer o.Close()
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := range 1000 {
		var id ID
		rand.Read(id[:])
		o.upsertLocked(id, path{addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 4000)}, true, time.Millisecond)
	}
	require.Equal(t, o.maxPaths(), len(o.paths), "the cache fills to its bound and no further")
}
