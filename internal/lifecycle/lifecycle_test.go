package lifecycle

import (
	"context"
	"testing"

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
