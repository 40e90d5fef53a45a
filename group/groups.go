package group

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2psock/p2psock/internal/lifecycle"
	"github.com/p2psock/p2psock/internal/metrics"
	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/overlay"
)

// Message is a message delivered to a member.
type Message struct {
	Data    []byte
	From    overlay.ID // the origin; its signature was verified
	Group   overlay.Key
	Anycast bool
}

// Groups is one node's part in every group tree: Scribe-style trees over the
// overlay, rooted at the node closest to the group's key. Its methods are
// safe for concurrent use.
//
// # Locking
//
// mu is the service's one lock. It guards trees and every field of every
// tree (tree.go), the members' closed state and the closing of their
// channels, anyWait, bseen and drains. It is held for bookkeeping only,
// never across a send, a lookup or anything else that waits: code that
// sends copies what it needs under mu, lets it go, sends, and takes it
// again to record the outcome (checking, where it matters, that the tree is
// still the one it started with). Methods whose names end in Locked need mu
// held. A tree's place (detached, attached to a parent, root) and the task
// running on it change only through the Locked methods of tree.go.
//
// # Lifecycle
//
// Every goroutine of the service runs in scope, and every context of
// background work derives from the scope's; Close flushes, then cancels
// that context and waits for the goroutines. Background work started by a
// received message runs under the work budget (Config.MaxBackground).
type Groups struct {
	ov   *overlay.Overlay
	self overlay.ID
	tag  [8]byte // the network's tag, in every envelope signature
	cfg  Config
	log  *slog.Logger

	scope     *lifecycle.Scope
	work      *lifecycle.Budget // background work of received messages
	closed    atomic.Bool       // set (under mu) when Close stops serving
	closeOnce sync.Once

	malformed, badEnvelope, refused, memberFull, givenUp, unscoped atomic.Uint64
	ops                                                            *metrics.Ops // the program's calls, by operation (treeview.go)

	mu      sync.Mutex
	trees   map[overlay.Key]*tree
	anyWait map[[16]byte]chan byte // pending anycasts of this node, by msgID
	bseen   map[[16]byte]time.Time // broadcast msgIDs, when first seen
	drains  int                    // drain goroutines running
	upkeep  bool                   // maintain runs: started with the first tree or broadcast
	drained chan struct{}          // signalled when a drain ends (Close waits on it)
}

// New starts the group service of h's overlay: it registers the service's
// handlers (call it before the overlay joins) and signs with the overlay's
// identity, in the overlay's network.
func New(h overlay.Host, cfg Config) *Groups {
	cfg.setDefaults()
	ov := h.Overlay()
	g := &Groups{ov: ov, self: ov.ID(), tag: wire.NetworkTag(ov.Network()), cfg: cfg, log: cfg.Logger,
		scope: lifecycle.NewScope(), work: lifecycle.NewBudget(cfg.MaxBackground),
		trees: map[overlay.Key]*tree{}, anyWait: map[[16]byte]chan byte{}, bseen: map[[16]byte]time.Time{},
		drained: make(chan struct{}, 1), ops: newOps()}
	ov.Handle(wire.ServiceGroup, g.handle)
	ov.HandleLink(wire.ServiceGroup, func(from overlay.ID, data []byte) bool {
		_, ok := g.handle(overlay.Message{Data: data, From: from, To: g.self.Key(), Service: wire.ServiceGroup})
		return ok
	})
	return g
}

// Close leaves every group and stops the service. It first hands the
// multicasts already queued to this node's children on (for at most
// Config.FlushTimeout; messages are still served meanwhile), then stops
// serving, closes every member and tells every parent and child that this
// node leaves (within Config.CloseTimeout), and finally cancels the
// service's background work and waits for its goroutines. Later calls
// fail with ErrClosed. Close is idempotent and returns nil.
func (g *Groups) Close() error {
	g.closeOnce.Do(func() {
		g.flush()
		type leave struct {
			to overlay.ID
			k  overlay.Key
		}
		var ls []leave
		g.mu.Lock()
		g.closed.Store(true)
		for k, t := range g.trees {
			if t.place == attached {
				ls = append(ls, leave{t.parent, k})
			}
			for c := range t.children { // so they find a new parent at once
				ls = append(ls, leave{c, k})
			}
			for _, m := range t.members {
				m.closeLocked()
			}
		}
		g.mu.Unlock()
		g.scope.Stop()
		ctx, cancel := context.WithTimeout(g.scope.Context(), g.cfg.CloseTimeout)
		var wg sync.WaitGroup
		for _, l := range ls {
			wg.Go(func() { _ = g.send(ctx, l.to, wire.GroupMsg{Type: wire.GroupLeave, Group: l.k}) })
		}
		wg.Wait()
		cancel()
		g.scope.Close()
	})
	return nil
}

// flush waits until no drain runs, for at most Config.FlushTimeout.
func (g *Groups) flush() {
	t := time.NewTimer(g.cfg.FlushTimeout)
	defer t.Stop()
	for {
		g.mu.Lock()
		busy := g.drains > 0
		g.mu.Unlock()
		if !busy {
			return
		}
		select {
		case <-g.drained:
		case <-t.C:
			return
		}
	}
}

// Stats counts what a node's group service dropped, by reason, since New.
// The counters only grow.
type Stats struct {
	// Busy is the number of received messages whose background work did
	// not fit in Config.MaxBackground. A Publish to pass on or to take the
	// root for, an Any and a Bcast are then refused (not acknowledged: the
	// sender sends it again, or tries another node); the attach, pruning
	// check or move that a Join, Leave or Redirect would start is skipped
	// (the next refresh does it). It also counts the Redirects a pruning
	// check found no room to send (sent again after RedirectRepeat).
	Busy uint64
	// Malformed is the number of messages ignored (and acknowledged)
	// because their type is unknown or their length wrong for it.
	Malformed uint64
	// BadEnvelope is the number of messages ignored (and acknowledged)
	// because their envelope does not decode, its signature does not
	// verify, or its kind is not the one of the message's type.
	BadEnvelope uint64
	// Refused is the number of messages refused because they were empty or
	// the service was closed.
	Refused uint64
	// MemberFull is the number of multicasts and anycasts lost at a member
	// whose queue (Config.MemberQueue) was full.
	MemberFull uint64
	// GivenUp is the number of multicasts given up for a child that did
	// not acknowledge them in three tries.
	GivenUp uint64
	// Unscoped is the number of broadcasts of a non-zero scope
	// (BroadcastTo) passed on but not delivered here: Config.OnBroadcast
	// is nil.
	Unscoped uint64
	// Background is the number of goroutines of background work for
	// received messages running now (at most Config.MaxBackground).
	Background int
}

// Stats returns the service's counters.
func (g *Groups) Stats() Stats {
	return Stats{
		Busy:        g.work.Dropped(),
		Malformed:   g.malformed.Load(),
		BadEnvelope: g.badEnvelope.Load(),
		Refused:     g.refused.Load(),
		MemberFull:  g.memberFull.Load(),
		GivenUp:     g.givenUp.Load(),
		Unscoped:    g.unscoped.Load(),
		Background:  g.work.InUse(),
	}
}

// background runs f, the background work of a received message, in the
// scope under the work budget. It reports false if f does not fit (counted
// in Stats.Busy) or the service is closing.
func (g *Groups) background(f func(ctx context.Context)) bool {
	return g.scope.TryGo(g.work, f)
}

// call runs f, the body of a caller's request, with ctx also cancelled when
// the service closes; a call that fails while the service closes fails with
// ErrClosed.
func (g *Groups) call(ctx context.Context, f func(ctx context.Context) error) error {
	if g.closed.Load() {
		return ErrClosed
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(g.scope.Context(), cancel)()
	if err := f(ctx); err != nil {
		if g.closed.Load() {
			return ErrClosed
		}
		return err
	}
	return nil
}

// send hands msg to the group service of node to: as a link message when
// this node has a link with it (tree edges, the next hop of an anycast, the
// bucket heads of a broadcast: the common case), else routed to its ID.
func (g *Groups) send(ctx context.Context, to overlay.ID, msg wire.GroupMsg) error {
	b := msg.Append(nil)
	err := g.ov.SendLink(ctx, to, wire.ServiceGroup, b)
	if !errors.Is(err, overlay.ErrNoLink) {
		return err
	}
	_, _, err = g.ov.SendService(ctx, wire.ServiceGroup, b, to.Key(), false)
	return err
}
