package group

import (
	"context"
	"slices"
	"time"

	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/overlay"
)

// prune keeps k's tree lean (PROTOCOL §11.6). A forwarder with few
// children (no member here, a parent, fewer than MinFanout children) tells
// each child to attach to its parent instead: it steps aside. A node with
// more than MaxFanout children tells those farthest from the key to attach
// to its member children nearest to it (members never hand their children
// on, so nothing comes back). Every new parent is closer to the key than the
// child, so the tree stays ordered by distance to the key. A child hears a
// Redirect at most every RedirectRepeat (one that was busy, or not yet
// attached, hears it again at the next refresh).
func (g *Groups) prune(ctx context.Context, k overlay.Key) {
	moves := g.movesFor(k)
	for _, mv := range moves {
		peer, ok := g.ov.PeerInfo(mv.to)
		if !ok {
			continue
		}
		msg := wire.GroupMsg{Type: wire.GroupRedirect, Group: k, Target: mv.to, Addr: peer.Addr}
		if peer.Public {
			msg.Flags = wire.GroupFlagPublic
		}
		g.background(func(ctx context.Context) {
			ctx, cancel := context.WithTimeout(ctx, g.cfg.SendTimeout)
			defer cancel()
			_ = g.send(ctx, mv.child, msg)
		})
	}
}

// move is a child to redirect, and the node it is to attach to.
type move struct{ child, to overlay.ID }

// movesFor runs the pruning check of k's tree, unless a task runs on it,
// and notes the Redirects it decides on.
func (g *Groups) movesFor(k overlay.Key) []move {
	g.mu.Lock()
	defer g.mu.Unlock()
	t := g.trees[k]
	if t == nil || t.task != idle {
		return nil
	}
	now := time.Now()
	free := func(c overlay.ID) bool {
		until, ok := t.redirects[c]
		return !ok || !until.After(now)
	}
	var moves []move
	switch {
	case len(t.members) == 0 && t.place == attached && len(t.children) > 0 && len(t.children) < g.cfg.MinFanout:
		for c := range t.children {
			if free(c) {
				moves = append(moves, move{c, t.parent})
			}
		}
	case len(t.children) > g.cfg.MaxFanout:
		kids := make([]overlay.ID, 0, len(t.children))
		for c := range t.children {
			kids = append(kids, c)
		}
		slices.SortFunc(kids, func(a, b overlay.ID) int { return overlay.CmpDistance(a.Key(), b.Key(), k) })
		var anchors []overlay.ID
		for _, c := range kids[:g.cfg.MaxFanout] {
			if t.withMember[c] && !g.ov.AttachedClient(c) { // a light client forwards for no one
				anchors = append(anchors, c)
			}
		}
		if len(anchors) == 0 {
			break
		}
		for i, c := range kids[g.cfg.MaxFanout:] {
			if free(c) {
				moves = append(moves, move{c, anchors[i%len(anchors)]})
			}
		}
	}
	for _, mv := range moves {
		t.redirects[mv.child] = now.Add(g.cfg.RedirectRepeat)
	}
	return moves
}

// onRedirect: this node's parent tells it to attach to another node
// (prune). It moves in the background, unless it is busy or the Redirect is
// not to be followed (PROTOCOL §11.3).
func (g *Groups) onRedirect(from overlay.ID, m wire.GroupMsg) ([]byte, bool) {
	k, target := overlay.Key(m.Group), overlay.ID(m.Target)
	if target == g.self || overlay.CmpDistance(target.Key(), g.self.Key(), k) >= 0 {
		return accepted() // the target is no closer to the key than this node
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	t := g.trees[k]
	if t == nil || !t.isParentLocked(from) || t.noMove[target].After(time.Now()) || !t.beginLocked(moving) {
		return accepted() // only the current parent redirects, and not to a node this one failed to move to
	}
	peer := overlay.Peer{ID: target, Addr: m.Addr, Public: m.Flags&wire.GroupFlagPublic != 0}
	if !g.background(func(ctx context.Context) { g.moveTo(ctx, t, k, from, peer) }) {
		t.endLocked() // the parent repeats the Redirect
	}
	return accepted()
}

// moveTo is the task moving of t: this node's parent (old) redirected it to
// peer. It links with peer (through old), joins it, and leaves old after
// RedirectGrace. It stays under old if it cannot get a direct link with
// peer or peer does not take the join.
func (g *Groups) moveTo(ctx context.Context, t *tree, k overlay.Key, old overlay.ID, peer overlay.Peer) {
	defer func() {
		g.mu.Lock()
		t.endLocked()
		g.mu.Unlock()
	}()
	mctx, cancel := context.WithTimeout(ctx, g.cfg.JoinTimeout)
	defer cancel()
	refuse := func() { // do not try peer again for a while: its parent keeps asking
		g.mu.Lock()
		t.noMove[peer.ID] = time.Now().Add(g.cfg.NoMoveFor)
		g.mu.Unlock()
	}
	if direct, err := g.ov.LinkWith(mctx, peer, old); err != nil || !direct {
		g.log.Debug("group: redirect: no direct link", "to", peer.ID, "err", err)
		refuse()
		return
	}
	if err := g.send(mctx, peer.ID, g.joinMsg(k)); err != nil {
		g.log.Debug("group: redirect: join failed", "to", peer.ID, "err", err)
		refuse()
		return
	}
	g.mu.Lock()
	moved := t.isParentLocked(old)
	if moved {
		t.setParentLocked(peer.ID)
	}
	undo := !moved && !t.isParentLocked(peer.ID)
	g.mu.Unlock()
	if !moved {
		if undo { // the tree changed meanwhile, and not toward peer
			g.leaveAsync(peer.ID, k)
		}
		return
	}
	g.log.Debug("group: redirected", "from", old, "to", peer.ID)
	g.scope.Go(func(ctx context.Context) {
		timer := time.NewTimer(g.cfg.RedirectGrace)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done():
			return
		}
		g.mu.Lock()
		back := g.trees[k] != t || t.isParentLocked(old)
		g.mu.Unlock()
		if back { // old is the parent again (or the tree is gone): keep it
			return
		}
		ctx, cancel := context.WithTimeout(ctx, g.cfg.LeaveTimeout)
		defer cancel()
		_ = g.send(ctx, old, wire.GroupMsg{Type: wire.GroupLeave, Group: k})
	})
}
