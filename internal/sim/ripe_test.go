package sim_test

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/sim"
)

// The RIPE model places hosts in countries by their share of the pings,
// is symmetric, and its RTTs over random pairs are those of the measured
// Internet (its percentiles are in RIPE's doc comment).
func TestRIPELatency(t *testing.T) {
	const hosts = 20000
	count := map[string]int{}
	for i := range hosts {
		count[sim.CountryName(sim.Country(i))]++
	}
	require.InDelta(t, 0.25, float64(count["US"])/hosts, 0.02, "the United States' share of hosts")
	require.InDelta(t, 0.11, float64(count["DE"])/hosts, 0.015, "Germany's share of hosts")
	require.Greater(t, len(count), 40, "countries with hosts")

	var rtts []time.Duration
	for i := range 50000 {
		a, b := (i*7919)%hosts, (i*104729+1)%hosts
		if a == b {
			continue
		}
		d := sim.RIPE(a, b)
		require.Equal(t, d, sim.RIPE(b, a), "symmetric")
		rtts = append(rtts, d)
	}
	slices.Sort(rtts)
	pct := func(p float64) float64 {
		return float64(rtts[int(math.Min(float64(len(rtts)-1), p*float64(len(rtts))))]) / float64(time.Millisecond)
	}
	t.Logf("RTT over random pairs: 10th %.0f ms, median %.0f ms, 90th %.0f ms, 99th %.0f ms, max %.0f ms", pct(0.1), pct(0.5), pct(0.9), pct(0.99), pct(1))
	require.InDelta(t, 110, pct(0.5), 15, "median RTT (ms)")
	require.InDelta(t, 212, pct(0.9), 25, "90th percentile (ms)")
	require.Less(t, pct(1), 700.0, "the longest RTT (ms)")
	require.Equal(t, 100*time.Microsecond, sim.RIPE(3, 3), "a host to itself")
}
