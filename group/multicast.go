package group

import (
	"context"
	"fmt"
	"time"

	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/overlay"
)

// Publish multicasts data to every member of group k: to the root, which
// sends it down the tree. It returns once the root has accepted it. Data
// larger than MaxData fails with ErrTooLarge.
func (g *Groups) Publish(ctx context.Context, k overlay.Key, data []byte) (err error) {
	defer func(start time.Time) { g.ops.Done("publish", start, err) }(time.Now())

	return g.call(ctx, func(ctx context.Context) error {
		if len(data) > MaxData {
			return tooLarge(len(data))
		}
		e := g.seal(wire.EnvMulticast, k, data)
		_, _, err := g.ov.SendService(ctx, wire.ServiceGroup, wire.GroupMsg{Type: wire.GroupPublish, Envelope: e.raw}.Append(nil), k, true)
		return err
	})
}

func tooLarge(n int) error {
	return fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, n, MaxData)
}

// onPublish: a multicast on its way to the root. The root disseminates it;
// a node that knows a closer one passes it on; the nearest node, outside
// the tree (one that joined near the key after the tree formed), takes the
// root over first, so that the old root's tree hangs under it.
func (g *Groups) onPublish(e *envelope) ([]byte, bool) {
	k := overlay.Key(e.Group)
	if _, notRoot := g.ov.NextHop(k); notRoot {
		if !g.background(func(ctx context.Context) { g.forwardPublish(ctx, e) }) {
			return nil, false
		}
		return accepted()
	}
	if g.outsideTree(k) {
		if !g.background(func(ctx context.Context) {
			if g.becomeRoot(ctx, k) {
				g.disseminate(e)
			} else {
				g.forwardPublish(ctx, e)
			}
		}) {
			return nil, false
		}
		return accepted()
	}
	g.disseminate(e)
	return accepted()
}

// onData: a multicast coming down the tree.
func (g *Groups) onData(e *envelope) ([]byte, bool) {
	g.disseminate(e)
	return accepted()
}

// forwardPublish passes a Publish on toward its group's root, as a new
// message of this node (within ForwardTimeout; the outcome is not reported
// back).
func (g *Groups) forwardPublish(ctx context.Context, e *envelope) {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.ForwardTimeout)
	defer cancel()
	_, _, _ = g.ov.SendService(ctx, wire.ServiceGroup, wire.GroupMsg{Type: wire.GroupPublish, Envelope: e.raw}.Append(nil), e.Group, true)
}

// disseminate delivers a multicast to local members and queues it for every
// child, once per message.
func (g *Groups) disseminate(e *envelope) {
	g.mu.Lock()
	defer g.mu.Unlock()
	t := g.treeLocked(e.Group)
	if _, dup := t.seen[e.MsgID]; dup {
		return
	}
	t.seen[e.MsgID] = time.Now()
	for _, m := range t.members {
		if !m.closed {
			g.deliverLocked(m, e.message(false))
		}
	}
	for c := range t.children {
		q := t.queues[c]
		if q == nil {
			q = &queue{}
			t.queues[c] = q
		}
		q.items = append(q.items, e)
		if !q.running {
			q.running = true
			g.drains++
			if !g.scope.Go(func(ctx context.Context) { g.drain(ctx, c, q) }) {
				q.running = false
				g.drains--
			}
		}
	}
}

// drain sends a child its queued multicasts in order, each up to drainTries
// times.
func (g *Groups) drain(ctx context.Context, child overlay.ID, q *queue) {
	for {
		g.mu.Lock()
		if len(q.items) == 0 || g.closed.Load() {
			q.running = false
			g.drains--
			g.mu.Unlock()
			select {
			case g.drained <- struct{}{}:
			default:
			}
			return
		}
		e := q.items[0]
		q.items = q.items[1:]
		g.mu.Unlock()
		msg := wire.GroupMsg{Type: wire.GroupData, Envelope: e.raw}
		for try := range drainTries {
			sctx, cancel := context.WithTimeout(ctx, g.cfg.SendTimeout)
			err := g.send(sctx, child, msg)
			cancel()
			if err == nil || ctx.Err() != nil || g.closed.Load() {
				break
			}
			g.log.Debug("group: child did not take a multicast", "child", child, "try", try, "err", err)
			if try == drainTries-1 {
				g.givenUp.Add(1)
			}
		}
	}
}
