package overlay

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRateLimitPerSubnetAndTotal(t *testing.T) {
	r := newRateLimit(10, 15) // bursts of 20 per subnet, 30 in total
	now := time.Now()
	a, b, c := netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("203.0.113.0/24")
	took := func(s netip.Prefix, n int) int {
		k := 0
		for range n {
			if r.allow(s, now) {
				k++
			}
		}
		return k
	}
	require.Equal(t, 20, took(a, 100), "one subnet gets its burst")
	require.Equal(t, 10, took(b, 100), "the total's burst is shared")
	require.Zero(t, took(c, 10))
	now = now.Add(time.Second)
	require.Equal(t, 10, took(a, 100), "refilled at the rate")

	// The subnets tracked are bounded: full buckets are forgotten.
	for i := range maxLimited + 10 {
		r.allow(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32), now)
	}
	require.LessOrEqual(t, r.len(), maxLimited)
	r.prune(now.Add(time.Minute))
	require.Zero(t, r.len())
}
