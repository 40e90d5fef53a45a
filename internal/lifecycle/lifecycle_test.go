package lifecycle

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestScopeCloseCancelsAndWaits(t *testing.T) {
	s := NewScope()
	started := make(chan struct{})
	exited := make(chan struct{})
	require.True(t, s.Go(func(ctx context.Context) {
		close(started)
		<-ctx.Done()
		close(exited)
	}))
	<-started
	s.Close()
	select {
	case <-exited:
	default:
		t.Fatal("Close returned before the goroutine exited")
	}
	require.False(t, s.Go(func(context.Context) { t.Error("ran after Close") }))
	s.Close() // idempotent
}

func TestScopeStopKeepsContextLive(t *testing.T) {
	s := NewScope()
	release := make(chan struct{})
	done := make(chan error, 1)
	require.True(t, s.Go(func(ctx context.Context) {
		<-release
		done <- ctx.Err()
	}))
	s.Stop()
	require.True(t, s.Stopping())
	require.False(t, s.Go(func(context.Context) {}), "no new goroutine after Stop")
	require.NoError(t, s.Context().Err(), "the flush phase keeps the context")
	close(release)
	require.NoError(t, <-done)
	s.Close()
	require.Error(t, s.Context().Err())
}

func TestBudgetBoundsAndCountsDrops(t *testing.T) {
	s := NewScope()
	defer s.Close()
	b := NewBudget(2)
	release := make(chan struct{})
	running := make(chan struct{}, 2)
	for range 2 {
		require.True(t, s.TryGo(b, func(context.Context) {
			running <- struct{}{}
			<-release
		}))
	}
	<-running
	<-running
	require.Equal(t, 2, b.InUse())
	require.False(t, s.TryGo(b, func(context.Context) { t.Error("ran over budget") }))
	require.False(t, s.TryGo(b, func(context.Context) { t.Error("ran over budget") }))
	require.Equal(t, uint64(2), b.Dropped())
	close(release)
	s.Close()
	require.Equal(t, 0, b.InUse(), "slots are released when the goroutines end")
	require.False(t, s.TryGo(b, func(context.Context) {}), "no goroutine after Close")
	require.Equal(t, 0, b.InUse(), "a refused Go gives its slot back")
}

// TestRepeatRunsUntilCloseWithoutOverlap: Repeat runs its function again
// and again, each run no sooner than the delay the previous one returned
// after it ended, never two runs at once (a slow run delays the next), in
// goroutines Close waits for, and not after Close.
func TestRepeatRunsUntilCloseWithoutOverlap(t *testing.T) {
	s := NewScope()
	var active, overlaps, early atomic.Int32
	var stopped atomic.Bool
	runs := make(chan struct{}, 100)
	release := make(chan struct{})
	var n atomic.Int32
	var ended time.Time // when the previous run ended; runs are ordered
	var delay time.Duration
	s.Repeat(time.Millisecond, func(ctx context.Context, now time.Time) time.Duration {
		if active.Add(1) > 1 {
			overlaps.Add(1)
		}
		defer active.Add(-1)
		if stopped.Load() {
			t.Error("a run after Close")
		}
		if ctx.Err() != nil || now.IsZero() {
			t.Error("a run without the lifetime context or its time")
		}
		if !ended.IsZero() && now.Sub(ended) < delay {
			early.Add(1)
		}
		i := n.Add(1)
		if i == 1 {
			<-release // the first run is slow
		}
		select {
		case runs <- struct{}{}:
		default:
		}
		delay = time.Duration(i) * time.Millisecond
		ended = time.Now()
		return delay
	})
	deadline := time.After(10 * time.Second)
	for i := range 5 {
		if i == 0 {
			close(release)
		}
		select {
		case <-runs:
		case <-deadline:
			t.Fatalf("%d runs in 10 s", i)
		}
	}
	s.Close()
	stopped.Store(true) // Close waited for the run in progress, if any
	require.Zero(t, overlaps.Load(), "runs overlapped")
	require.Zero(t, early.Load(), "a run came before the delay its predecessor returned")
	require.Zero(t, active.Load(), "a run still active after Close")
	require.Empty(t, s.timers)
}
