package overlay

import (
	"context"
	"crypto/rand"
	"sync"
	"time"
)

// maintain starts the periodic work of the overlay, which runs until
// Close: keepalives and liveness checks, expiry of bounded state, and
// refreshes. It sleeps until the next of them falls due: every second
// while state with timeouts of seconds is in flight (busyLocked), at most
// maintainMax otherwise, so that an idle node wakes a few times a minute
// and walks its table only then. It sleeps on a timer of the scope
// (lifecycle.Scope.Repeat): an idle node has no goroutine waiting.
func (o *Overlay) maintain() {
	jitter := func() time.Duration {
		var b [1]byte
		rand.Read(b[:])
		return o.cfg.Refresh/2 + o.cfg.Refresh*time.Duration(b[0])/256
	}
	o.mu.Lock()
	o.liveness.Store(int64(o.cfg.Liveness))
	o.mu.Unlock()
	nextRefresh := time.Now().Add(jitter())
	if o.cfg.Client {
		nextRefresh = time.Now().Add(o.clientRefresh())
	}
	o.scope.Repeat(time.Second, func(_ context.Context, now time.Time) time.Duration {
		next := o.keepalive(now)
		o.housekeep(now)
		o.expire(now)
		o.mu.Lock()
		joined := o.joined
		// Busy, or contacts came or went lately: every second, so that
		// Known follows the table within a second.
		if o.busyLocked() || now.Sub(o.knownAt) < knownSettle {
			next = earliest(next, now.Add(time.Second))
		}
		if due := o.pingsDueLocked(); !due.IsZero() {
			next = earliest(next, due)
		}
		o.mu.Unlock()
		if joined && o.cfg.Client && now.After(nextRefresh) {
			nextRefresh = now.Add(o.clientRefresh())
			o.startReattach()
		} else if joined && now.After(nextRefresh) {
			nextRefresh = now.Add(jitter())
			o.scope.Go(func(ctx context.Context) {
				ctx, cancel := context.WithTimeout(ctx, time.Minute)
				defer cancel()
				o.refreshRound(ctx)
			})
		}
		if joined {
			next = earliest(next, nextRefresh.Add(time.Millisecond))
		}
		return max(time.Until(next), 100*time.Millisecond)
	})
}

// knownSettle is how long after the routing table last changed the
// maintenance loop still runs every second.
const knownSettle = 10 * time.Second

// earliest returns the earlier of a and b.
func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// bucketRefreshEvery is how many refresh rounds (Config.Refresh) a bucket
// that lost no contact waits between refreshes: an hour with the defaults,
// as in Kademlia.
const bucketRefreshEvery = 12

// bucketState is what the periodic refresh remembers of a bucket.
type bucketState struct {
	at  time.Time // when it was last refreshed
	len int       // its size then
}

// refreshRound is the periodic refresh, sized to the table rather than to
// a full walk of it: a lookup of a random key in each bucket that lost
// contacts since it was last refreshed, in each bucket with room not
// refreshed for bucketRefreshEvery rounds (or ever), and in the full
// bucket refreshed longest ago once that is bucketRefreshEvery rounds ago;
// and a lookup of this node's own ID (which brings its neighbourhood, the
// nodes messages to keys near it end at, up to date and makes this node
// known to it) when a bucket lost contacts, or bucketRefreshEvery rounds
// after the last one. A node learns of the nodes that join near it from
// their own lookups, and of those that leave or die from their goodbyes
// and the liveness checks, which shrink a bucket: a network whose nodes
// stay costs a node about one lookup per round, one that churns a lookup
// per bucket that lost contacts and one of its own ID.
func (o *Overlay) refreshRound(ctx context.Context) {
	now := time.Now()
	o.mu.Lock()
	deepest := o.tab.deepestNonEmpty()
	for len(o.buckets) < deepest {
		o.buckets = append(o.buckets, bucketState{})
	}
	var due []int
	oldest, shrank := -1, false
	for cpl := range deepest {
		b := o.buckets[cpl]
		switch {
		case len(o.tab.bucket(cpl)) < b.len:
			due = append(due, cpl)
			shrank = true
		case len(o.tab.bucket(cpl)) < o.cfg.K && now.Sub(b.at) >= bucketRefreshEvery*o.cfg.Refresh:
			due = append(due, cpl) // room, and not refreshed for an hour (or ever)
		case now.Sub(b.at) >= bucketRefreshEvery*o.cfg.Refresh && (oldest < 0 || b.at.Before(o.buckets[oldest].at)):
			oldest = cpl
		}
	}
	if oldest >= 0 {
		due = append(due, oldest)
	}
	for cpl := range deepest {
		if o.buckets[cpl].at.IsZero() {
			o.buckets[cpl].len = len(o.tab.bucket(cpl)) // never refreshed: watch it shrink from now
		}
	}
	self := shrank || now.Sub(o.selfRefreshed) >= bucketRefreshEvery*o.cfg.Refresh
	if self {
		o.selfRefreshed = now
	}
	o.mu.Unlock()
	if self {
		o.ctr.refreshLookups.Add(1)
		o.lookup(ctx, o.self.Key())
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for _, cpl := range due {
		if ctx.Err() != nil || o.isClosed() {
			break
		}
		sem <- struct{}{}
		o.ctr.refreshLookups.Add(1)
		wg.Go(func() {
			defer func() { <-sem }()
			o.lookup(ctx, randomKeyInBucket(o.self.Key(), cpl))
		})
	}
	wg.Wait()
	o.mu.Lock()
	for _, cpl := range due {
		if cpl < len(o.buckets) {
			o.buckets[cpl] = bucketState{at: now, len: len(o.tab.bucket(cpl))}
		}
	}
	o.mu.Unlock()
}

// refreshedLocked records that the buckets below deepest were all looked
// up at now (a full refresh: at join, Meet, or after contacts lost to
// silence were linked again), so that the periodic rounds do not look up
// again, within the hour, the buckets with room it just filled as far as
// the network allows.
func (o *Overlay) refreshedLocked(deepest int, now time.Time) {
	for len(o.buckets) < deepest {
		o.buckets = append(o.buckets, bucketState{})
	}
	for cpl := range deepest {
		o.buckets[cpl] = bucketState{at: now, len: len(o.tab.bucket(cpl))}
	}
	o.selfRefreshed = now
}
