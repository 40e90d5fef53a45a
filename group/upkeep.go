package group

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/overlay"
)

// attach joins the tree of k through this node's next hop toward k, or makes
// this node the root when it has none (PROTOCOL §11.5). It never uses the
// nodes in avoid as next hop.
func (g *Groups) attach(ctx context.Context, k overlay.Key, avoid ...overlay.ID) error {
	exclude := slices.Clone(avoid)
	g.mu.Lock()
	// A root looks for closer nodes once per RootLookup; in between, its
	// table and take-overs (becomeRoot) find them.
	looked := false
	if t := g.trees[k]; t != nil && t.place == rooted && time.Since(t.lookedAt) < g.cfg.RootLookup {
		looked = true
	}
	g.mu.Unlock()
	var found []overlay.ID
	for {
		next, ok := g.ov.NextHop(k, exclude...)
		if !ok && !looked && len(exclude) == len(avoid) {
			// About to be the root: make sure no closer node exists that this
			// node has not heard of yet (a fresh node's table fills as it goes).
			looked = true
			found, _ = g.ov.Lookup(ctx, k)
			g.mu.Lock()
			if t := g.trees[k]; t != nil {
				t.lookedAt = time.Now()
			}
			g.mu.Unlock()
			continue
		}
		g.mu.Lock()
		t := g.trees[k]
		if t == nil {
			g.mu.Unlock()
			return nil
		}
		if !ok {
			if t.place == attached {
				g.log.Debug("group: now the root", "group", k)
			}
			old, leaveOld, claim := t.becomeRootLocked()
			g.mu.Unlock()
			if leaveOld {
				g.leaveAsync(old, k)
			}
			if claim { // only on becoming the root, not at every refresh
				cctx, cancel := context.WithTimeout(ctx, g.cfg.ClaimTimeout)
				g.claimRoot(cctx, k, found)
				cancel()
			}
			return nil
		}
		g.mu.Unlock()
		err := g.send(ctx, next, g.joinMsg(k))
		if err == nil {
			g.mu.Lock()
			old, leaveOld := t.setParentLocked(next)
			g.mu.Unlock()
			if leaveOld {
				g.leaveAsync(old, k)
			}
			return nil
		}
		if ctx.Err() != nil || g.closed.Load() {
			return err
		}
		g.log.Debug("group: join failed", "next", next, "err", err)
		exclude = append(exclude, next)
	}
}

// joinMsg is a Join for k's tree, saying whether this node has a member
// there.
func (g *Groups) joinMsg(k overlay.Key) wire.GroupMsg {
	m := wire.GroupMsg{Type: wire.GroupJoin, Group: k}
	g.mu.Lock()
	if t := g.trees[k]; t != nil && t.memberLocked() != nil {
		m.Flags = wire.GroupFlagMember
	}
	g.mu.Unlock()
	return m
}

// reattach is the task attaching of t: it finds t a place in k's tree, not
// under the nodes in avoid, then runs the pruning check.
func (g *Groups) reattach(ctx context.Context, t *tree, k overlay.Key, avoid ...overlay.ID) {
	actx, cancel := context.WithTimeout(ctx, g.cfg.JoinTimeout)
	_ = g.attach(actx, k, avoid...)
	cancel()
	g.mu.Lock()
	t.endLocked()
	g.mu.Unlock()
	g.prune(ctx, k)
}

// refresh renews this node's place in the tree of k: it re-joins its parent
// while the parent answers (a tree that works is left alone: moving would
// lose messages in flight), and finds a new one when it does not. The root
// checks that no closer node has appeared, which would be the new root.
func (g *Groups) refresh(ctx context.Context, k overlay.Key) {
	g.mu.Lock()
	t := g.trees[k]
	if t == nil {
		g.mu.Unlock()
		return
	}
	parent, has := t.parent, t.place == attached
	g.mu.Unlock()
	if has && g.send(ctx, parent, g.joinMsg(k)) == nil {
		return
	}
	_ = g.attach(ctx, k)
}

// leaveAsync tells to, in the background, that this node leaves k's tree
// (under it, or as its parent).
func (g *Groups) leaveAsync(to overlay.ID, k overlay.Key) {
	g.scope.Go(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, g.cfg.LeaveTimeout)
		defer cancel()
		_ = g.send(ctx, to, wire.GroupMsg{Type: wire.GroupLeave, Group: k})
	})
}

// startUpkeepLocked starts maintain once there is something to maintain (a
// tree, or a broadcast to forget), so that a node that never uses groups
// spends no goroutine on them.
func (g *Groups) startUpkeepLocked() {
	if !g.upkeep {
		g.upkeep = true
		g.scope.Go(g.maintain)
	}
}

// maintain refreshes the trees every Refresh: expires children and
// memories, drops the trees nobody needs, re-joins parents and runs the
// pruning checks.
func (g *Groups) maintain(ctx context.Context) {
	tick := time.NewTicker(g.cfg.Refresh)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			var keys []overlay.Key
			g.mu.Lock()
			for k, t := range g.trees {
				if t.expireLocked(now, g.cfg.SeenKeep) {
					if t.place == attached {
						g.leaveAsync(t.parent, k)
					}
					delete(g.trees, k)
					continue
				}
				keys = append(keys, k)
			}
			for id, at := range g.bseen {
				if now.Sub(at) > g.cfg.SeenKeep {
					delete(g.bseen, id)
				}
			}
			g.mu.Unlock()
			for _, k := range keys {
				rctx, cancel := context.WithTimeout(ctx, g.cfg.JoinTimeout)
				g.refresh(rctx, k)
				cancel()
				g.prune(ctx, k)
			}
		}
	}
}

// becomeRoot makes this node, if it is the nearest to k, the root of k's
// tree: it looks k up (its table may not know the nearest nodes yet), and if
// no closer node turns up, claims the root (claimRoot), so that the root of
// the tree formed before it appeared attaches to it. It returns false if a
// closer node turned up: the message goes on toward it.
//
// The nodes it weighs (NextHop, Lookup, Closest) come from the overlay's
// diverse routing table and lookups: at most Config.SubnetPerBucket of them
// share a subnet, so nodes of one network placed next to k cannot crowd the
// others out of the root's place or of its claim.
func (g *Groups) becomeRoot(ctx context.Context, k overlay.Key) bool {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.JoinTimeout)
	defer cancel()
	found, _ := g.ov.Lookup(ctx, k)
	if _, closer := g.ov.NextHop(k); closer {
		return false
	}
	g.mu.Lock()
	t := g.treeLocked(k)
	claim := false
	if t.place == detached {
		_, _, claim = t.becomeRootLocked()
	}
	g.mu.Unlock()
	if claim {
		cctx, cancel := context.WithTimeout(ctx, g.cfg.ClaimTimeout)
		defer cancel()
		g.claimRoot(cctx, k, found)
	}
	return true
}

// claimRoot tells the nodes nearest k after this one (from a lookup, or the
// routing table) that this node is now the root of k's tree. One that was a
// root of k until now (the tree had split: it had not yet heard of this
// closer node) attaches to this node at once, and becomes its child, so a
// multicast published right away reaches both parts.
func (g *Groups) claimRoot(ctx context.Context, k overlay.Key, near []overlay.ID) {
	if len(near) == 0 {
		near = g.ov.Closest(k, g.cfg.ClaimFanout+1)
	}
	msg := wire.GroupMsg{Type: wire.GroupRoot, Group: k}.Append(nil)
	var wg sync.WaitGroup
	n := 0
	for _, id := range near {
		if id == g.self || n == g.cfg.ClaimFanout {
			continue
		}
		n++
		wg.Go(func() {
			reply, _, err := g.ov.SendService(ctx, wire.ServiceGroup, msg, id.Key(), false)
			if err != nil || len(reply) != 1 || reply[0] != 1 {
				return
			}
			g.mu.Lock()
			if t := g.trees[k]; t != nil && t.place != attached {
				t.children[id] = time.Now().Add(g.cfg.lease())
			}
			g.mu.Unlock()
		})
	}
	wg.Wait()
}

// onJoin: from is (still) a child. A new forwarder (no parent, not the
// root) attaches in the background; a new child otherwise starts a pruning
// check.
func (g *Groups) onJoin(from overlay.ID, m wire.GroupMsg) ([]byte, bool) {
	k := overlay.Key(m.Group)
	g.mu.Lock()
	defer g.mu.Unlock()
	t := g.treeLocked(k)
	_, known := t.children[from]
	t.children[from] = time.Now().Add(g.cfg.lease())
	t.withMember[from] = m.Flags&wire.GroupFlagMember != 0
	if t.place == detached && t.beginLocked(attaching) {
		if !g.background(func(ctx context.Context) { g.reattach(ctx, t, k) }) {
			t.endLocked() // the next refresh attaches
		}
	} else if !known {
		g.background(func(ctx context.Context) { g.prune(ctx, k) })
	}
	return accepted()
}

// onLeave: from is no longer a child; if it is this node's parent (it is
// closing), this node finds another one at once.
func (g *Groups) onLeave(from overlay.ID, m wire.GroupMsg) ([]byte, bool) {
	k := overlay.Key(m.Group)
	g.mu.Lock()
	defer g.mu.Unlock()
	t := g.treeLocked(k)
	t.dropChildLocked(from)
	delete(t.redirects, from)
	if t.isParentLocked(from) && t.beginLocked(attaching) {
		t.detachLocked()
		if !g.background(func(ctx context.Context) { g.reattach(ctx, t, k, from) }) {
			t.endLocked() // the next refresh attaches
		}
	}
	return accepted()
}

// onRoot: from has just become the root of a tree this node is a root of;
// if from is closer to the key, this node attaches to it (reply 1).
func (g *Groups) onRoot(from overlay.ID, m wire.GroupMsg) ([]byte, bool) {
	k := overlay.Key(m.Group)
	g.mu.Lock()
	defer g.mu.Unlock()
	t := g.trees[k]
	if t == nil || t.place == attached || overlay.CmpDistance(from.Key(), g.self.Key(), k) >= 0 {
		return accepted() // not a root of k, or the sender is no closer
	}
	g.log.Debug("group: a closer root appeared", "group", k, "root", from)
	t.setParentLocked(from)
	return []byte{1}, true
}
