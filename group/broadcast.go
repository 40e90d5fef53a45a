package group

import (
	"context"
	"errors"
	"time"

	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/overlay"
)

// Broadcast sends data to every node of the network: each node hands it to
// one contact in each of its buckets deeper than the part of the ID space it
// was given, so about N−1 messages reach every node in O(log N) steps. It
// returns the errors of this node's own sends, joined. Data larger than
// MaxData fails with ErrTooLarge.
func (g *Groups) Broadcast(ctx context.Context, data []byte) error {
	return g.BroadcastTo(ctx, overlay.Key{}, data)
}

// BroadcastTo is Broadcast with a scope, which travels signed in the
// envelope's group field: a broadcast of scope zero is Broadcast's (it
// reaches each node's receive queue); one of another scope is handed, at
// every node, to Config.OnBroadcast, which decides where it goes (package
// p2psock scopes the broadcasts of a named service so). Every node passes
// it on, whatever its scope.
func (g *Groups) BroadcastTo(ctx context.Context, scope overlay.Key, data []byte) (err error) {
	defer func(start time.Time) { g.ops.Done("broadcast", start, err) }(time.Now())

	return g.call(ctx, func(ctx context.Context) error {
		if len(data) > MaxData {
			return tooLarge(len(data))
		}
		return g.broadcastStep(ctx, g.seal(wire.EnvBroadcast, scope, data), 0)
	})
}

// broadcastStep delivers broadcast e here, once, and hands it to the head
// of every bucket from height on; a light client hands it to a proxy.
func (g *Groups) broadcastStep(ctx context.Context, e *envelope, height int) error {
	g.mu.Lock()
	if _, dup := g.bseen[e.MsgID]; dup {
		g.mu.Unlock()
		return nil
	}
	g.startUpkeepLocked()
	g.bseen[e.MsgID] = time.Now()
	g.mu.Unlock()
	if e.Group == (overlay.Key{}) {
		g.ov.Deliver(overlay.Message{Data: e.Data, From: e.Origin, To: g.self.Key(), Broadcast: true})
	} else if g.cfg.OnBroadcast != nil {
		g.cfg.OnBroadcast(Message{Data: e.Data, From: e.Origin, Group: e.Group})
	} else {
		g.unscoped.Add(1)
	}
	var errs []error
	if g.ov.IsClient() {
		// A light client is in no node's buckets, and has few of its own:
		// a proxy broadcasts for it, to the whole network (height 0).
		for _, id := range g.ov.Proxies() {
			err := g.send(ctx, id, wire.GroupMsg{Type: wire.GroupBcast, Height: 0, Envelope: e.raw})
			if err == nil {
				return nil
			}
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	}
	for b, id := range g.ov.BucketHeads(height) {
		err := g.send(ctx, id, wire.GroupMsg{Type: wire.GroupBcast, Height: uint16(b + 1), Envelope: e.raw})
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// onBcast: a broadcast, for the nodes sharing m.Height leading bits with
// this one.
func (g *Groups) onBcast(m wire.GroupMsg, e *envelope) ([]byte, bool) {
	if !g.background(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, g.cfg.ForwardTimeout)
		defer cancel()
		_ = g.broadcastStep(ctx, e, int(m.Height))
	}) {
		return nil, false
	}
	return accepted()
}
