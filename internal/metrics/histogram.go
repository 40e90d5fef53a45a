// Package metrics holds the lock-free histograms the lower layers keep for
// the node's Prometheus collector (package p2psock's Node.Collector) and its
// view page: a fixed set of upper bounds chosen when the histogram is made,
// one atomic count per bound, and a sum. It depends on nothing but the
// standard library, so every layer may keep one.
package metrics

import (
	"math"
	"sync/atomic"
	"time"
)

// LatencyBounds returns the upper bounds, in seconds, of the latency
// histograms: 1 ms to about 16 s, doubling. The slice is shared: callers
// must not change it.
func LatencyBounds() []float64 { return latencyBounds }

// latencyBounds are LatencyBounds, shared by every histogram of latencies
// (a Histogram never changes its bounds): a node holds several.
var latencyBounds = func() []float64 {
	out := make([]float64, 15)
	for i := range out {
		out[i] = 0.001 * math.Pow(2, float64(i))
	}
	return out
}()

// CountBounds returns the upper bounds of the histograms of small counts
// (the rounds of a lookup): 1 to 20.
func CountBounds() []float64 { return []float64{1, 2, 3, 4, 5, 6, 8, 10, 15, 20} }

// Histogram counts observations in buckets with fixed upper bounds. Its zero
// value is not usable: make one with NewHistogram. Its methods are safe for
// concurrent use.
type Histogram struct {
	bounds []float64
	counts []atomic.Uint64 // counts[i]: observations <= bounds[i] and > bounds[i-1]; the last: above every bound
	sum    atomic.Uint64   // math.Float64bits of the sum
}

// NewHistogram returns a histogram with the given upper bounds, which must
// be increasing.
func NewHistogram(bounds []float64) *Histogram {
	return &Histogram{bounds: bounds, counts: make([]atomic.Uint64, len(bounds)+1)}
}

// Observe counts v.
func (h *Histogram) Observe(v float64) {
	i := 0
	for i < len(h.bounds) && v > h.bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	for {
		old := h.sum.Load()
		if h.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// ObserveSince counts the time since start, in seconds.
func (h *Histogram) ObserveSince(start time.Time) { h.Observe(time.Since(start).Seconds()) }

// Snapshot is a histogram's state at one moment, in the form Prometheus
// exposes: cumulative counts per upper bound.
type Snapshot struct {
	Count   uint64
	Sum     float64
	Buckets map[float64]uint64 // upper bound -> observations <= it
}

// Snapshot returns the histogram's counts so far.
func (h *Histogram) Snapshot() Snapshot {
	s := Snapshot{Buckets: make(map[float64]uint64, len(h.bounds))}
	for i, b := range h.bounds {
		s.Count += h.counts[i].Load()
		s.Buckets[b] = s.Count
	}
	s.Count += h.counts[len(h.bounds)].Load()
	s.Sum = math.Float64frombits(h.sum.Load())
	return s
}
