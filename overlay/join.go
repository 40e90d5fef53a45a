package overlay

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"time"
)

// Join links to the network through one of the entry points ("host:port"),
// tried in random order, then fills the routing table. With no entry point
// answering it returns an error wrapping ErrNoEntryPoint if joinOnly is set,
// and otherwise starts a new network (nil error).
//
// Join returns once this node is reachable: the nodes closest to its ID,
// which the rest of the network routes through to reach it, have verified it
// and route a message sent to its ID straight to it, so that a Send to its
// ID from any node succeeds at once. A light client (Config.Client) waits
// the same way for its proxies. That wait is bounded by ctx and by
// Config.SendTimeout; a node whose neighbours did not all confirm it by then
// has still joined (nil error), and the others learn of it as it talks to
// them.
func (o *Overlay) Join(ctx context.Context, entries []string, joinOnly bool) error {
	if o.isClosed() {
		return o.errClosed("bind")
	}
	entries = slices.Clone(entries)
	rand.Shuffle(len(entries), func(i, j int) { entries[i], entries[j] = entries[j], entries[i] })
	var errs []error
	joined := false
	for _, e := range entries {
		err := o.joinVia(ctx, e)
		if err == nil {
			joined = true
			break
		}
		errs = append(errs, fmt.Errorf("%s: %w", e, err))
		if o.isClosed() {
			return o.errClosed("bind")
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if !joined {
		if joinOnly || o.cfg.Client {
			if len(entries) == 0 {
				return fmt.Errorf("%w: no entry points given", ErrNoEntryPoint)
			}
			return fmt.Errorf("%w: %w", ErrNoEntryPoint, errors.Join(errs...))
		}
		o.log.Info("starting a new network", "network", o.cfg.Network, "id", o.self)
	} else {
		o.refresh(ctx)
		o.settle(ctx)
	}
	if o.isClosed() {
		return o.errClosed("bind")
	}
	o.mu.Lock()
	o.joined = true
	o.answered = nil // settling is over: nothing answers again, and the map lets its memory go (clear would keep it)
	o.mu.Unlock()
	return nil
}

// Meet links to the node at addr ("host:port", found by local discovery,
// say), then refreshes the routing table through it, so that two networks
// that started apart merge. It does nothing if a contact already has addr.
func (o *Overlay) Meet(ctx context.Context, addr string) error {
	if o.isClosed() {
		return o.errClosed("meet")
	}
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return err
	}
	ap := unmap(ua.AddrPort())
	o.mu.Lock()
	known := false
	for _, c := range o.tab.byID {
		if c.p.addr == ap && !c.p.relayed() {
			known = true
			break
		}
	}
	o.mu.Unlock()
	if known {
		return nil
	}
	if err := o.joinVia(ctx, addr); err != nil {
		return err
	}
	o.refresh(ctx)
	if o.isClosed() {
		return o.errClosed("meet")
	}
	return nil
}

func (o *Overlay) joinVia(ctx context.Context, entry string) error {
	if o.isClosed() {
		return o.errClosed("bind")
	}
	ua, err := net.ResolveUDPAddr("udp", entry)
	if err != nil {
		return err
	}
	ap := unmap(ua.AddrPort())
	if ap == o.local {
		return errors.New("entry point is this node")
	}
	// A bootstrap ping accepts any ID; the answer proves the key of that ID.
	wait := 200 * time.Millisecond
	for try := 0; try < 4; try++ {
		done := o.ping(ID{}, path{addr: ap}, true)
		t := time.NewTimer(wait)
		select {
		case <-done:
			t.Stop()
			return nil
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-o.done():
			t.Stop()
			return o.errClosed("bind")
		case <-t.C:
		}
		wait *= 2
	}
	return errors.New("no answer")
}

// refresh looks up this node's own ID, then a random key in every bucket
// farther than its nearest neighbour, so each bucket whose part of the ID
// space holds nodes has contacts there.
func (o *Overlay) refresh(ctx context.Context) {
	o.lookup(ctx, o.self.Key())
	if o.cfg.Client {
		return // a client keeps its proxies only
	}
	o.mu.Lock()
	deepest := o.tab.deepestNonEmpty()
	o.mu.Unlock()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for cpl := 0; cpl < deepest && ctx.Err() == nil && !o.isClosed(); cpl++ {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			o.lookup(ctx, randomKeyInBucket(o.self.Key(), cpl))
		})
	}
	wg.Wait()
}
