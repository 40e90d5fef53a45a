package metrics

import (
	"sync/atomic"
	"time"
)

// Ops counts the calls of a service's operations (a DHT's Add and Get, a
// group's Publish): how many ended, how many of them with an error, and
// how long they took. Its methods are safe for concurrent use.
type Ops struct {
	names []string
	byOp  map[string]*op // read-only after NewOps
}

type op struct {
	calls, errors atomic.Uint64
	latency       *Histogram
}

// NewOps returns the counters of the operations named.
func NewOps(names ...string) *Ops {
	o := &Ops{names: names, byOp: make(map[string]*op, len(names))}
	for _, n := range names {
		o.byOp[n] = &op{latency: NewHistogram(LatencyBounds())}
	}
	return o
}

// Done counts a call of the operation name that began at start and ended
// with err. A name NewOps was not given is ignored.
func (o *Ops) Done(name string, start time.Time, err error) {
	p := o.byOp[name]
	if p == nil {
		return
	}
	p.calls.Add(1)
	if err != nil {
		p.errors.Add(1)
	}
	p.latency.ObserveSince(start)
}

// OpSnapshot is one operation's counts at one moment.
type OpSnapshot struct {
	Name    string
	Calls   uint64   // calls that ended
	Errors  uint64   // of which with an error
	Latency Snapshot // seconds
}

// Snapshot returns the counts of every operation, in the order NewOps was
// given them.
func (o *Ops) Snapshot() []OpSnapshot {
	out := make([]OpSnapshot, 0, len(o.names))
	for _, n := range o.names {
		p := o.byOp[n]
		out = append(out, OpSnapshot{Name: n, Calls: p.calls.Load(), Errors: p.errors.Load(), Latency: p.latency.Snapshot()})
	}
	return out
}
