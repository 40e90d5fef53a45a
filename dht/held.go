package dht

import (
	"cmp"
	"slices"
	"time"

	"github.com/p2psock/p2psock/internal/metrics"
	"github.com/p2psock/p2psock/overlay"
)

// AttachName is the name a DHT attaches itself under to its node's overlay
// (overlay.Overlay.Attach), so that tools given the node find it.
const AttachName = "dht"

// Held describes one live value this node holds as a replica, for tools that
// show it (the node's view page). The value itself is left out.
type Held struct {
	Key     string
	Owner   overlay.ID
	Size    int // the value's length, in bytes
	Expires time.Time
}

// Held returns up to n of the live values this node holds as a replica, by
// key, then owner, then expiry.
func (d *DHT) Held(n int) []Held {
	now := time.Now()
	var out []Held
	st := d.st
	st.mu.Lock()
	for key, ks := range st.keys {
		for owner, os := range ks.owners {
			for _, e := range os.adds {
				if exp := e.op.expiry(); exp.After(now) {
					out = append(out, Held{Key: key, Owner: owner, Size: len(e.op.value), Expires: exp})
				}
			}
		}
	}
	st.mu.Unlock()
	slices.SortFunc(out, func(a, b Held) int {
		if c := cmp.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		if c := slices.Compare(a.Owner[:], b.Owner[:]); c != 0 {
			return c
		}
		return a.Expires.Compare(b.Expires)
	})
	if len(out) > n {
		out = out[:max(n, 0)]
	}
	return out
}

// Ops returns the counts of the program's calls of the DHT (add, remove,
// delete, get): how many ended, with an error, and how long they took.
func (d *DHT) Ops() []metrics.OpSnapshot { return d.ops.Snapshot() }

// newOps returns the counters of the DHT's operations.
func newOps() *metrics.Ops { return metrics.NewOps("add", "remove", "delete", "get") }
