// Package lifecycle is the one shutdown protocol of p2psock's components
// (the overlay, the group and DHT services, the connection engine): a Scope
// is a component's lifetime, with a context that Close cancels and the
// goroutines started in it, which Close waits for; a Budget bounds the work
// started per packet or per message, and counts what it turns away.
//
// A component's Close runs in three phases:
//
//	s.Stop()  // no new goroutine starts; running ones go on (flush phase)
//	...       // the component flushes: says goodbye, lingers, bounded in time
//	s.Close() // the lifetime context is cancelled, Close waits for the goroutines
//
// Background work derives its contexts from Context, never from
// context.Background, so that nothing outlives Close.
package lifecycle

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Scope is the lifetime of a component. The zero value is not usable; call
// NewScope. Its methods are safe for concurrent use.
type Scope struct {
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex // orders wg.Add against Stop
	stopped bool
	wg      sync.WaitGroup
	timers  []*time.Timer // of Repeat, stopped by Stop
}

// NewScope returns a live scope.
func NewScope() *Scope {
	ctx, cancel := context.WithCancel(context.Background())
	return &Scope{ctx: ctx, cancel: cancel}
}

// Context is the lifetime context: it is cancelled by Close.
func (s *Scope) Context() context.Context { return s.ctx }

// Done is closed when Close has cancelled the lifetime context.
func (s *Scope) Done() <-chan struct{} { return s.ctx.Done() }

// Stopping reports whether Stop (or Close) was called.
func (s *Scope) Stopping() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

// Go runs f in a goroutine tracked by the scope, with the lifetime context.
// It reports false, and does not run f, once Stop was called.
func (s *Scope) Go(f func(ctx context.Context)) bool {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return false
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		f(s.ctx)
	}()
	return true
}

// TryGo is Go under a budget: it runs f only if b has a free slot, which f
// holds until it returns. Otherwise it counts a drop in b and reports false.
func (s *Scope) TryGo(b *Budget, f func(ctx context.Context)) bool {
	if !b.acquire() {
		return false
	}
	if !s.Go(func(ctx context.Context) {
		defer b.release()
		f(ctx)
	}) {
		b.release()
		return false
	}
	return true
}

// Repeat runs f d from now, and then again each time after the delay f
// returned (at once if it is not positive), until Stop: each run in a
// goroutine tracked by the scope, with the lifetime context and the time
// of the run. Runs never overlap: the delay starts when a run ends. Between
// runs only a timer waits, not a goroutine: a component idle between its
// periodic tasks holds no goroutine (nor its stack) for them.
func (s *Scope) Repeat(d time.Duration, f func(ctx context.Context, now time.Time) time.Duration) {
	var (
		run sync.Mutex // orders the runs, which are in goroutines of their own
		t   *time.Timer
	)
	tick := func() {
		s.mu.Lock()
		if s.stopped {
			s.mu.Unlock()
			return
		}
		s.wg.Add(1)
		s.mu.Unlock()
		defer s.wg.Done()
		run.Lock()
		defer run.Unlock()
		next := f(s.ctx, time.Now())
		s.mu.Lock()
		if !s.stopped {
			t.Reset(next)
		}
		s.mu.Unlock()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	run.Lock() // t is set before the first run reads it
	t = time.AfterFunc(d, tick)
	run.Unlock()
	s.timers = append(s.timers, t)
}

// Stop makes further Go calls fail and stops the timers of Repeat;
// goroutines already running go on, and the lifetime context stays live.
// It is the start of a flush phase.
func (s *Scope) Stop() {
	s.mu.Lock()
	s.stopped = true
	for _, t := range s.timers {
		t.Stop()
	}
	s.timers = nil
	s.mu.Unlock()
}

// Close stops the scope, cancels the lifetime context and waits for every
// goroutine started with Go. It is idempotent.
func (s *Scope) Close() {
	s.Stop()
	s.cancel()
	s.wg.Wait()
}

// Budget bounds how many goroutines of one kind run at once. The zero value
// is not usable; call NewBudget.
type Budget struct {
	slots   chan struct{}
	dropped atomic.Uint64
}

// NewBudget returns a budget of n concurrent goroutines (n ≥ 1).
func NewBudget(n int) *Budget {
	return &Budget{slots: make(chan struct{}, max(n, 1))}
}

func (b *Budget) acquire() bool {
	select {
	case b.slots <- struct{}{}:
		return true
	default:
		b.dropped.Add(1)
		return false
	}
}

func (b *Budget) release() { <-b.slots }

// Dropped returns how many goroutines the budget turned away.
func (b *Budget) Dropped() uint64 { return b.dropped.Load() }

// InUse returns how many of the budget's slots are held now.
func (b *Budget) InUse() int { return len(b.slots) }

// Cap returns the budget's size.
func (b *Budget) Cap() int { return cap(b.slots) }
