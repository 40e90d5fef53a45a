package testnet

import (
	"context"
	"sync"
	"testing"
	"time"
)

// Inbox collects what a network's nodes receive on one channel, for tests
// that send somewhere and wait for where it arrived. M is the test's record
// of one arrival (the message and the node it reached, say).
type Inbox[M any] struct {
	t      testing.TB
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// C carries the arrivals, 4096 at most waiting.
	C chan M
}

// NewInbox returns an empty inbox; Close ends its collecting goroutines.
func NewInbox[M any](t testing.TB) *Inbox[M] {
	ctx, cancel := context.WithCancel(context.Background())
	return &Inbox[M]{t: t, ctx: ctx, cancel: cancel, C: make(chan M, 4096)}
}

// Collect puts what recv returns on C until recv fails (its node closed)
// or the inbox closes; recv gets a context that Close cancels.
func (in *Inbox[M]) Collect(recv func(context.Context) (M, error)) {
	in.wg.Go(func() {
		for {
			m, err := recv(in.ctx)
			if err != nil {
				return
			}
			select {
			case in.C <- m:
			case <-in.ctx.Done():
				return
			}
		}
	})
}

// Expect waits up to 10 s for an arrival that match accepts, dropping the
// others, and fails the test if none comes.
func (in *Inbox[M]) Expect(match func(M) bool) M {
	in.t.Helper()
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	for {
		select {
		case m := <-in.C:
			if match(m) {
				return m
			}
		case <-timer.C:
			in.t.Fatalf("expected message never arrived")
			var zero M
			return zero
		}
	}
}

// Close stops collecting and waits for the collecting goroutines.
func (in *Inbox[M]) Close() {
	in.cancel()
	in.wg.Wait()
}

// Discard drops every arrival from now until Close, for benchmarks that
// count only what senders see.
func (in *Inbox[M]) Discard() {
	in.wg.Go(func() {
		for {
			select {
			case <-in.C:
			case <-in.ctx.Done():
				return
			}
		}
	})
}
