package group

import (
	"cmp"
	"slices"

	"github.com/p2psock/p2psock/internal/metrics"
	"github.com/p2psock/p2psock/overlay"
)

// TreeInfo describes this node's place in one group's tree, for tools that
// show it (the node's view page).
type TreeInfo struct {
	Key      overlay.Key
	Root     bool         // this node claimed the root: it found no node closer to Key
	Parent   overlay.ID   // its parent; zero for the root and while detached
	Children []overlay.ID // its children, by ID
	Members  int          // the program's live Joins of the group on this node
}

// Trees returns the trees this node is part of (as a member, a forwarder or
// the root), by key.
func (g *Groups) Trees() []TreeInfo {
	g.mu.Lock()
	out := make([]TreeInfo, 0, len(g.trees))
	for k, t := range g.trees {
		ti := TreeInfo{Key: k, Root: t.place == rooted, Members: len(t.members)}
		if t.place == attached {
			ti.Parent = t.parent
		}
		for c := range t.children {
			ti.Children = append(ti.Children, c)
		}
		slices.SortFunc(ti.Children, func(a, b overlay.ID) int { return slices.Compare(a[:], b[:]) })
		out = append(out, ti)
	}
	g.mu.Unlock()
	slices.SortFunc(out, func(a, b TreeInfo) int { return cmp.Compare(string(a.Key[:]), string(b.Key[:])) })
	return out
}

// Ops returns the counts of the program's calls of the service (join,
// publish, anycast, broadcast): how many ended, with an error, and how long
// they took.
func (g *Groups) Ops() []metrics.OpSnapshot { return g.ops.Snapshot() }

// newOps returns the counters of the service's operations.
func newOps() *metrics.Ops { return metrics.NewOps("join", "publish", "anycast", "broadcast") }
