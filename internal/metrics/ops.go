package metrics

import (
	"slices"
	"sync/atomic"
	"time"
)

// Ops counts the calls of a service's operations (a DHT's Add and Get, a
// group's Publish): how many ended, how many of them with an error, and
// how long they took. An operation's counters are made at its first call:
// a node that never uses a service holds none. Its methods are safe for
// concurrent use.
type Ops struct {
	names []string
	ops   []atomic.Pointer[op] // ops[i]: the counters of names[i]; nil before its first call
}

type op struct {
	calls, errors atomic.Uint64
	latency       *Histogram
}

// NewOps returns the counters of the operations named.
func NewOps(names ...string) *Ops {
	return &Ops{names: names, ops: make([]atomic.Pointer[op], len(names))}
}

// Done counts a call of the operation name that began at start and ended
// with err. A name NewOps was not given is ignored.
func (o *Ops) Done(name string, start time.Time, err error) {
	i := slices.Index(o.names, name)
	if i < 0 {
		return
	}
	p := o.ops[i].Load()
	if p == nil {
		p = &op{latency: NewHistogram(LatencyBounds())}
		if !o.ops[i].CompareAndSwap(nil, p) {
			p = o.ops[i].Load()
		}
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
	for i, n := range o.names {
		p := o.ops[i].Load()
		if p == nil { // not called yet: zero counts
			p = &op{latency: NewHistogram(LatencyBounds())}
		}
		out = append(out, OpSnapshot{Name: n, Calls: p.calls.Load(), Errors: p.errors.Load(), Latency: p.latency.Snapshot()})
	}
	return out
}
