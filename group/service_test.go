package group

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/overlay"
)

// These tests run one group service on an overlay with no contacts
// (newFuzzGroups): whatever it sends fails at once, so they see the
// service's own rules.

// lonely is a group service on a contact-less overlay with cfg, closed at
// the end of the test.
func lonely(t *testing.T, cfg Config) *Groups {
	t.Helper()
	ov, err := overlay.New(overlay.Config{Identity: key(1), Network: "fuzz", Difficulty: -1}, nowhere{})
	require.NoError(t, err)
	g := New(ov, cfg)
	t.Cleanup(func() {
		g.Close()
		ov.Close()
	})
	return g
}

// from is the node the tests' messages come from.
var from = overlay.ID(key(2).Public().(ed25519.PublicKey))

func (g *Groups) receive(m wire.GroupMsg) ([]byte, bool) {
	return g.handle(overlay.Message{Data: m.Append(nil), From: from, To: g.self.Key(), Service: wire.ServiceGroup})
}

func TestGroupErrors(t *testing.T) {
	testnet.CheckLeaks(t)
	g := lonely(t, Config{})
	ctx := context.Background()
	k := overlay.KeyOf([]byte("errors"))

	for name, f := range map[string]func(data []byte) error{
		"Publish":   func(d []byte) error { return g.Publish(ctx, k, d) },
		"Anycast":   func(d []byte) error { return g.Anycast(ctx, k, d) },
		"Broadcast": func(d []byte) error { return g.Broadcast(ctx, d) },
	} {
		t.Run(name+" too large", func(t *testing.T) {
			err := f(make([]byte, MaxData+1))
			require.ErrorIs(t, err, ErrTooLarge)
			require.ErrorIs(t, err, overlay.ErrMessageTooLarge)
		})
	}
	// Alone, this node is the root of an empty group.
	require.ErrorIs(t, g.Anycast(ctx, k, []byte("?")), ErrEmptyGroup)

	m, err := g.Join(ctx, k)
	require.NoError(t, err)
	_, hasParent := g.Parent(k)
	require.False(t, hasParent, "alone, this node is the root")
	require.NoError(t, g.Anycast(ctx, k, []byte("to me")))
	got, err := m.Recv(ctx)
	require.NoError(t, err)
	require.Equal(t, Message{Data: []byte("to me"), From: g.self, Group: k, Anycast: true}, got)

	// After Close, every call fails with ErrClosed, which is net.ErrClosed,
	// and messages are refused.
	require.NoError(t, g.Close())
	require.NoError(t, g.Close(), "Close is idempotent")
	_, err = m.Recv(ctx)
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, err, net.ErrClosed)
	_, err = g.Join(ctx, k)
	require.ErrorIs(t, err, net.ErrClosed)
	for _, err := range []error{g.Publish(ctx, k, nil), g.Anycast(ctx, k, nil), g.Broadcast(ctx, nil)} {
		require.ErrorIs(t, err, ErrClosed)
		require.ErrorIs(t, err, net.ErrClosed)
	}
	_, ok := g.receive(wire.GroupMsg{Type: wire.GroupJoin, Group: k})
	require.False(t, ok)
	require.Equal(t, uint64(1), g.Stats().Refused)
	require.False(t, errors.Is(ErrClosed, overlay.ErrMessageTooLarge))
}

// Messages that do not decode are acknowledged, ignored and counted.
func TestGroupIgnoredMessagesAreCounted(t *testing.T) {
	testnet.CheckLeaks(t)
	g := lonely(t, Config{})
	k := overlay.Key{9}
	mc := sealBy(key(2), wire.EnvMulticast, k, []byte("x")).Append(nil)
	for _, b := range [][]byte{{wire.GroupLeave}, {0x42}, append([]byte{wire.GroupRoot}, k[:5]...)} {
		reply, ok := g.handle(overlay.Message{Data: b, From: from})
		require.True(t, ok)
		require.Equal(t, []byte{0}, reply)
	}
	forged := append([]byte(nil), mc...)
	forged[len(forged)-1] ^= 1
	for _, m := range []wire.GroupMsg{
		{Type: wire.GroupData, Envelope: forged},
		{Type: wire.GroupAny, Envelope: mc}, // a multicast envelope in an Any
	} {
		_, ok := g.receive(m)
		require.True(t, ok)
	}
	_, ok := g.handle(overlay.Message{From: from})
	require.False(t, ok, "an empty message is refused")
	st := g.Stats()
	require.Equal(t, Stats{Malformed: 3, BadEnvelope: 2, Refused: 1}, st)
	g.mu.Lock()
	defer g.mu.Unlock()
	require.Empty(t, g.trees, "ignored messages create no state")
}

// Received messages start background work only within MaxBackground: an
// Any that does not fit is refused, the attach a Join would start is
// skipped (the Join itself is taken), and neither starts a goroutine.
func TestGroupBackgroundWorkIsBounded(t *testing.T) {
	testnet.CheckLeaks(t)
	g := lonely(t, Config{MaxBackground: 2})
	g.mu.Lock()
	g.startUpkeepLocked() // the one refresh loop, which the first tree starts
	g.mu.Unlock()
	release := make(chan struct{})
	free := sync.OnceFunc(func() { close(release) })
	defer free() // a failed require does not leave the jobs waiting
	for range 2 {
		require.True(t, g.background(func(ctx context.Context) { <-release }))
	}
	k := overlay.Key{9}
	any := wire.GroupMsg{Type: wire.GroupAny, Envelope: sealBy(key(2), wire.EnvAnycast, k, []byte("job")).Append(nil)}
	before := runtime.NumGoroutine()
	for range 1000 {
		_, ok := g.receive(any)
		require.False(t, ok, "no room: refused, so the sender tries again or elsewhere")
	}
	_, ok := g.receive(wire.GroupMsg{Type: wire.GroupJoin, Group: k})
	require.True(t, ok)
	require.LessOrEqual(t, runtime.NumGoroutine(), before, "a flood starts no goroutine")
	require.Equal(t, Stats{Busy: 1001, Background: 2}, g.Stats())
	g.mu.Lock()
	tr := g.trees[k]
	require.NotNil(t, tr)
	require.Contains(t, tr.children, from)
	require.Equal(t, idle, tr.task, "the skipped attach is not left marked running")
	require.Equal(t, detached, tr.place)
	g.mu.Unlock()

	free()
	testnet.Eventually(t, 5*time.Second, "the budget frees up", func() bool { return g.Stats().Background == 0 })
	_, ok = g.receive(any)
	require.True(t, ok)
}

// A parent keeps a child for three Refresh after its last Join, and drops
// a tree left with no member and no child at the refresh after that. In a
// synctest bubble the default timings (5 s) take no time.
func TestGroupChildLeaseIsThreeRefreshes(t *testing.T) {
	testnet.CheckLeaks(t)
	synctest.Test(t, func(t *testing.T) {
		ov, err := overlay.New(overlay.Config{Identity: key(1), Network: "fuzz", Difficulty: -1}, nowhere{})
		require.NoError(t, err)
		defer ov.Close()
		g := New(ov, Config{})
		defer g.Close()
		k := overlay.Key{9}
		join := wire.GroupMsg{Type: wire.GroupJoin, Group: k}
		children := func() []overlay.ID {
			synctest.Wait() // the service has done what the time that passed asks for
			return g.Children(k)
		}

		_, ok := g.receive(join)
		require.True(t, ok)
		require.Equal(t, []overlay.ID{from}, children())
		g.mu.Lock()
		require.Equal(t, rooted, g.trees[k].place, "alone, the new forwarder is the root")
		g.mu.Unlock()

		// In the bubble, Sleep moves the fake clock on: nothing real waits.
		time.Sleep(2 * DefaultRefresh) // the refreshes at 5 s and 10 s keep it
		require.Equal(t, []overlay.ID{from}, children())
		g.receive(join) // renewed at 10 s: until 25 s
		time.Sleep(3*DefaultRefresh - time.Millisecond)
		require.Equal(t, []overlay.ID{from}, children(), "kept until its lease ends")
		time.Sleep(time.Millisecond) // the refresh at 25 s
		require.Empty(t, children())
		g.mu.Lock()
		require.Empty(t, g.trees, "a tree with no member and no child is dropped")
		g.mu.Unlock()
	})
}
