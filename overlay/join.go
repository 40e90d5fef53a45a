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
// Without joinOnly each entry point is pinged for about 3 s (4 pings)
// before the node gives up on it. With joinOnly the node has nothing else
// to do than join, and an entry point that is busy (its socket or its
// machine behind, a node of a large network under load) may take longer
// than that to answer: the entry points are tried in turn again, one ping
// each at most every joinRetryMax, until one answers or ctx ends, or
// joinPatience (1 minute) if ctx has no deadline. The error then wraps
// ErrNoEntryPoint and, if ctx ended, ctx's error.
//
// Join returns once this node is reachable: the nodes closest to its ID,
// which the rest of the network routes through to reach it, have verified it
// and route a message sent to its ID straight to it, so that a Send to its
// ID from any node succeeds at once. A light client (Config.Client) waits
// the same way for its proxies. Filling the table and that wait are
// bounded together by ctx and by Config.SendTimeout; a node whose neighbours
// did not all confirm it by then
// has still joined (nil error), and the others learn of it as it talks to
// them.
func (o *Overlay) Join(ctx context.Context, entries []string, joinOnly bool) error {
	if o.isClosed() {
		return o.errClosed("bind")
	}
	entries = slices.Clone(entries)
	rand.Shuffle(len(entries), func(i, j int) { entries[i], entries[j] = entries[j], entries[i] })
	mustJoin := joinOnly || o.cfg.Client
	bctx := ctx // the bootstrap's patience
	if _, ok := ctx.Deadline(); !ok && mustJoin {
		var cancel context.CancelFunc
		bctx, cancel = context.WithTimeout(ctx, joinPatience)
		defer cancel()
	}
	errs := make([]error, len(entries))
	joined := false
	bad := 0 // entry points that can never answer (unresolvable, this node)
	for round := 0; !joined && bad < len(entries); round++ {
		bad = 0
		for i, e := range entries {
			err := o.joinVia(bctx, e, round)
			if err == nil {
				joined = true
				break
			}
			if errors.Is(err, errNotEntry) {
				bad++
			}
			if errs[i] == nil || bctx.Err() == nil { // keep why it failed before the patience ran out
				errs[i] = fmt.Errorf("%s: %w", e, err)
			}
			if o.isClosed() {
				return o.errClosed("bind")
			}
			if bctx.Err() != nil {
				break
			}
		}
		if !mustJoin || bctx.Err() != nil {
			break
		}
	}
	if !joined {
		if ctx.Err() != nil && !mustJoin {
			return ctx.Err()
		}
		if mustJoin {
			if len(entries) == 0 {
				return fmt.Errorf("%w: no entry points given", ErrNoEntryPoint)
			}
			if err := bctx.Err(); err != nil {
				return fmt.Errorf("%w: %w (%w)", ErrNoEntryPoint, errors.Join(errs...), err)
			}
			return fmt.Errorf("%w: %w", ErrNoEntryPoint, errors.Join(errs...))
		}
		o.log.Info("starting a new network", "network", o.cfg.Network, "id", o.self)
	} else {
		// Filling the table and settling take SendTimeout at most,
		// together: on a busy network a refresh's lookups may take long,
		// and the node has joined once an entry point answered.
		fctx, cancel := context.WithTimeout(ctx, o.cfg.SendTimeout)
		o.refresh(fctx)
		o.settle(fctx)
		cancel()
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
	for c := range o.tab.contacts() {
		if c.p.addr == ap && !c.p.relayed() {
			known = true
			break
		}
	}
	o.mu.Unlock()
	if known {
		return nil
	}
	if err := o.joinVia(ctx, addr, 0); err != nil {
		return err
	}
	o.refresh(ctx)
	if o.isClosed() {
		return o.errClosed("meet")
	}
	return nil
}

const (
	// joinPatience bounds the bootstrap of a Join that must join (joinOnly,
	// or a light client) when its context has no deadline.
	joinPatience = time.Minute
	// joinRetryMax is the longest wait for an entry point's answer before
	// it is pinged again (after the first round's 0.2, 0.4, 0.8 and 1.6 s).
	joinRetryMax = 3200 * time.Millisecond
)

// errNotEntry is the error of an entry point that can never answer.
var errNotEntry = errors.New("not an entry point")

// joinVia links to the entry point ("host:port"). In round 0 it pings it
// four times, waiting 0.2 s for the answer and twice as long each time
// after (3 s in all); in later rounds (a Join that must join, its entry
// points silent so far) once, waiting joinRetryMax: an entry point that is
// busy gets fewer pings, not more. An answer to any of its pings, however
// late, links it.
func (o *Overlay) joinVia(ctx context.Context, entry string, round int) error {
	if o.isClosed() {
		return o.errClosed("bind")
	}
	ua, err := net.ResolveUDPAddr("udp", entry)
	if err != nil {
		return fmt.Errorf("%w: %w", errNotEntry, err)
	}
	ap := unmap(ua.AddrPort())
	if ap == o.local {
		return fmt.Errorf("%w: it is this node", errNotEntry)
	}
	wait, tries := 200*time.Millisecond, 4
	if round > 0 {
		wait, tries = joinRetryMax, 1
	}
	var answered []<-chan struct{}
	for try := 0; try < tries; try++ {
		// A bootstrap ping accepts any ID; the answer proves the key of
		// that ID.
		answered = append(answered, o.pingWait(ID{}, path{addr: ap}, true))
		t := time.NewTimer(wait)
		select {
		case <-answered[len(answered)-1]:
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
		for _, ch := range answered[:len(answered)-1] {
			select {
			case <-ch:
				return nil // a late answer to an earlier ping
			default:
			}
		}
		wait = min(2*wait, joinRetryMax)
	}
	return errors.New("no answer")
}

// refresh looks up this node's own ID, then a random key in every bucket
// farther than its nearest neighbour (lookupBucket), so each bucket whose
// part of the ID space holds nodes has contacts there.
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
			o.lookupBucket(ctx, cpl)
		})
	}
	wg.Wait()
	if ctx.Err() == nil {
		o.mu.Lock()
		o.refreshedLocked(deepest, time.Now())
		o.mu.Unlock()
	}
}

// lookupBucket looks up a random key in bucket cpl to fill that bucket. It
// ends as soon as the bucket holds k contacts (before its first round,
// too), rather than converging on the k nodes closest to the key: any node
// of the bucket serves it. A bucket with room converges as before, so that
// every node of a part of the network holding fewer than k nodes hears of
// this one: routing ends at the node closest to a key only while every
// node has a contact in each of its buckets that the network populates
// (ending earlier left some unaware of the newcomer; docs/BENCHMARKS.md,
// "Cheaper joins").
func (o *Overlay) lookupBucket(ctx context.Context, cpl int) {
	o.lookupUntil(ctx, randomKeyInBucket(o.self.Key(), cpl), func() bool {
		o.mu.Lock()
		defer o.mu.Unlock()
		return len(o.tab.bucket(cpl)) >= o.cfg.K
	})
}
