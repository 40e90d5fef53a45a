package overlay

import (
	"context"
	"crypto/rand"
	"time"
)

// maintain runs the periodic work of the overlay until Close: keepalives
// and liveness checks, expiry of bounded state, and refreshes. It sleeps
// until the next of them falls due: every second while state with
// timeouts of seconds is in flight (busyLocked), at most maintainMax
// otherwise, so that an idle node wakes a few times a minute and walks its
// table only then.
func (o *Overlay) maintain(ctx context.Context) {
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
	timer := time.NewTimer(time.Second)
	defer timer.Stop()
	for {
		select {
		case <-o.done():
			return
		case <-timer.C:
		}
		now := time.Now()
		next := o.keepalive(now)
		o.housekeep(now)
		o.expire(now)
		o.mu.Lock()
		joined := o.joined
		if o.busyLocked() {
			next = earliest(next, now.Add(time.Second))
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
				o.refresh(ctx)
			})
		}
		if joined {
			next = earliest(next, nextRefresh.Add(time.Millisecond))
		}
		timer.Reset(max(time.Until(next), 100*time.Millisecond))
	}
}

// earliest returns the earlier of a and b.
func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
