package group

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/overlay"
)

// Anycast hands data to exactly one member of group k: the first node of
// k's tree on the way to the root gives it to a member in its subtree. It
// fails with ErrEmptyGroup if the group has no member, and with
// ErrTooLarge if data is larger than MaxData.
func (g *Groups) Anycast(ctx context.Context, k overlay.Key, data []byte) (err error) {
	defer func(start time.Time) { g.ops.Done("anycast", start, err) }(time.Now())

	return g.call(ctx, func(ctx context.Context) error {
		if len(data) > MaxData {
			return tooLarge(len(data))
		}
		e := g.seal(wire.EnvAnycast, k, data)
		ch := make(chan byte, 1)
		g.mu.Lock()
		g.anyWait[e.MsgID] = ch
		g.mu.Unlock()
		defer func() {
			g.mu.Lock()
			delete(g.anyWait, e.MsgID)
			g.mu.Unlock()
		}()
		if !g.scope.Go(func(ctx context.Context) { g.anyStep(ctx, e, false) }) {
			return ErrClosed
		}
		select {
		case st := <-ch:
			if st == wire.AnyEmpty {
				return ErrEmptyGroup
			}
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
}

// anyStep moves an anycast one step: to a local member, down to a child, or
// up toward the root; the root of an empty tree reports the group empty.
func (g *Groups) anyStep(ctx context.Context, e *envelope, down bool) {
	k := overlay.Key(e.Group)
	g.mu.Lock()
	t := g.trees[k]
	var member *Member
	var children []overlay.ID
	if t != nil {
		member = t.memberLocked()
		for c := range t.children {
			children = append(children, c)
		}
	}
	if member != nil {
		g.deliverLocked(member, e.message(true))
		g.mu.Unlock()
		g.anyResult(ctx, e, wire.AnyDelivered)
		return
	}
	g.mu.Unlock()
	rand.Shuffle(len(children), func(i, j int) { children[i], children[j] = children[j], children[i] })
	for _, c := range children {
		if g.sendAny(ctx, c, e, 1) == nil {
			return
		}
	}
	if !down {
		var exclude []overlay.ID
		tookOver := false
		for {
			next, ok := g.ov.NextHop(k, exclude...)
			if !ok && len(exclude) == 0 && !tookOver && g.outsideTree(k) {
				// The nearest node, outside the tree (see onPublish):
				// take the root over, then hand the anycast down; or go on
				// toward a closer node the lookup found.
				tookOver = true
				if !g.becomeRoot(ctx, k) {
					continue
				}
				if !g.outsideTree(k) {
					g.anyStep(ctx, e, true)
					return
				}
				break
			}
			if !ok {
				break
			}
			if g.sendAny(ctx, next, e, 0) == nil {
				return
			}
			exclude = append(exclude, next)
		}
	}
	g.log.Debug("group: anycast finds no member", "group", k, "down", down, "children", len(children), "outside", g.outsideTree(k))
	g.anyResult(ctx, e, wire.AnyEmpty)
}

// sendAny hands the anycast e on to node to, within SendTimeout.
func (g *Groups) sendAny(ctx context.Context, to overlay.ID, e *envelope, down byte) error {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.SendTimeout)
	defer cancel()
	return g.send(ctx, to, wire.GroupMsg{Type: wire.GroupAny, Down: down, Envelope: e.raw})
}

// anyResult reports the outcome of anycast e to its origin.
func (g *Groups) anyResult(ctx context.Context, e *envelope, status byte) {
	if overlay.ID(e.Origin) == g.self {
		g.anyDone(e.MsgID, status)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, g.cfg.ForwardTimeout)
	defer cancel()
	_ = g.send(ctx, e.Origin, wire.GroupMsg{Type: wire.GroupAnyResult, MsgID: e.MsgID, Status: status})
}

// anyDone hands the outcome of this node's anycast id to its caller, if it
// still waits; the first outcome counts.
func (g *Groups) anyDone(id [16]byte, status byte) {
	g.mu.Lock()
	ch := g.anyWait[id]
	g.mu.Unlock()
	if ch != nil {
		select {
		case ch <- status:
		default:
		}
	}
}

// onAny: an anycast walking toward a member (down: down the tree).
func (g *Groups) onAny(m wire.GroupMsg, e *envelope) ([]byte, bool) {
	down := m.Down == 1
	if !g.background(func(ctx context.Context) { g.anyStep(ctx, e, down) }) {
		return nil, false
	}
	return accepted()
}

// onAnyResult: the outcome of one of this node's anycasts.
func (g *Groups) onAnyResult(m wire.GroupMsg) ([]byte, bool) {
	g.anyDone(m.MsgID, m.Status)
	return accepted()
}
