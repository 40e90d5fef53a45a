package overlay

import (
	"sync"
	"time"

	"github.com/p2psock/p2psock/internal/metrics"
)

// LookupStats describe the node's iterative lookups since it started (its
// own Lookups, and those of joining, refreshing and routing): how long each
// took and how many rounds of queries it needed (the hops of Kademlia's
// analysis: each round asks nodes that the previous one named).
type LookupStats struct {
	Latency metrics.Snapshot // seconds
	Rounds  metrics.Snapshot
}

// lookupStats are the histograms behind LookupStats, made on first use.
type lookupStats struct {
	once            sync.Once
	latency, rounds *metrics.Histogram
}

func (s *lookupStats) init() {
	s.once.Do(func() {
		s.latency = metrics.NewHistogram(metrics.LatencyBounds())
		s.rounds = metrics.NewHistogram(metrics.CountBounds())
	})
}

// observe counts a lookup that began at start and took rounds rounds.
func (s *lookupStats) observe(start time.Time, rounds int) {
	s.init()
	s.latency.ObserveSince(start)
	s.rounds.Observe(float64(rounds))
}

// LookupStats returns the histograms of the node's lookups.
func (o *Overlay) LookupStats() LookupStats {
	o.lookups.init()
	return LookupStats{Latency: o.lookups.latency.Snapshot(), Rounds: o.lookups.rounds.Snapshot()}
}
