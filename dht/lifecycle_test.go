package dht

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/internal/testnet/ovnet"
	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/overlay"
)

func TestErrorsMatchNet(t *testing.T) {
	require.ErrorIs(t, ErrClosed, net.ErrClosed)
	require.ErrorIs(t, fmt.Errorf("get: %w", ErrClosed), ErrClosed)
	require.ErrorIs(t, ErrKeyTooLarge, overlay.ErrMessageTooLarge)
	require.ErrorIs(t, ErrValueTooLarge, overlay.ErrMessageTooLarge)
	require.NotErrorIs(t, ErrKeyTooLarge, ErrValueTooLarge)
	require.NotErrorIs(t, ErrNoReplica, net.ErrClosed)
	require.Equal(t, "dht: closed", ErrClosed.Error())
}

// An Add that waits for a replica which stopped acknowledging (it would wait
// until its 30 s context ends) is ended by Close with ErrClosed, which is a
// net.ErrClosed, and every call after Close fails the same way.
func TestLoopbackDHTCloseEndsCallWaitingForSilentReplica(t *testing.T) {
	testnet.CheckLeaks(t)
	tn := newLoopbackDHT(t, 8, Config{})
	// A node that never acknowledges a DHT request (its handler refuses
	// every one, unacknowledged, so senders try again until they give up).
	var asked atomic.Int64
	silent, err := ovnet.Open(overlay.Config{}, testnet.LoopbackAddr(len(tn.Nodes)), nil, func(nd *ovnet.Node) error {
		nd.Handle(wire.ServiceDHT, func(overlay.Message) ([]byte, bool) {
			asked.Add(1)
			return nil, false
		})
		return nil
	})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, silent.Join(ctx, []string{tn.Nodes[0].Addr()}, true))
	tn.Nodes = append(tn.Nodes, silent) // closed at the end of the test
	// A key the silent node is the closest node to: it is a replica.
	var key string
	for i := 0; ; i++ {
		key = fmt.Sprintf("key %d", i)
		if closest := closestTo(tn.Nodes, overlay.KeyOf([]byte(key))); closest == silent.ID() {
			break
		}
	}
	d := tn.dhts[3]
	added := make(chan error, 1)
	go func() { added <- d.Add(ctx, key, []byte("v"), 0) }()
	testnet.Eventually(t, 10*time.Second, "the silent replica is asked", func() bool { return asked.Load() > 0 })
	select {
	case err := <-added:
		t.Fatalf("the Add ended before Close: %v", err)
	default:
	}
	require.NoError(t, d.Close())
	err = <-added
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, err, net.ErrClosed)

	require.NoError(t, d.Close(), "Close is idempotent")
	require.ErrorIs(t, d.Add(ctx, "k", nil, 0), net.ErrClosed)
	require.ErrorIs(t, d.Remove(ctx, "k", nil), net.ErrClosed)
	require.ErrorIs(t, d.Delete(ctx, "k"), net.ErrClosed)
	_, err = d.Get(ctx, "k")
	require.ErrorIs(t, err, net.ErrClosed)
	_, err = d.Watch(ctx, "k")
	require.ErrorIs(t, err, net.ErrClosed)
}

func closestTo(nodes []*ovnet.Node, key overlay.Key) overlay.ID {
	best := nodes[0].ID()
	for _, n := range nodes[1:] {
		if key.Closer(n.ID().Key(), best.Key()) {
			best = n.ID()
		}
	}
	return best
}

// A flood of changes to a key watched by a node that stopped answering
// (each change is one notification, which would wait 10 s for it) grows the
// replica's goroutines by a bounded number, Config.Workers notifications
// and the overlay's goroutines sending them; the others are dropped and
// counted. Close does not wait for the pending notifications.
func TestLoopbackDHTFloodOfChangesIsBounded(t *testing.T) {
	testnet.CheckLeaks(t)
	const workers = 4
	tn := newLoopbackDHT(t, 2, Config{Workers: workers, MaxValuesPerOwner: 1000})
	replica := tn.dhts[0]
	watcher, sc := ovnet.JoinSilent(t, tn.Net, overlay.Config{}, nil)
	const key = "busy"
	replica.st.mu.Lock()
	replica.st.keyLocked(key).watchers[watcher.ID()] = time.Now().Add(time.Minute)
	replica.st.mu.Unlock()
	sc.Silence()

	base := runtime.NumGoroutine()
	const changes = 100
	for i := range changes {
		op := &signedOp{op: opAdd, owner: replica.ov.ID(), seq: uint64(i + 1), expires: time.Now().Add(time.Hour).UnixMilli(),
			key: key, value: fmt.Appendf(nil, "v%d", i)}
		op.sign(replica.ov.Sign, replica.net)
		reply, ok := replica.handle(overlay.Message{Data: append([]byte{reqStore}, op.raw...), From: tn.Nodes[1].ID()})
		require.True(t, ok)
		require.Equal(t, []byte{statusOK}, reply)
	}
	grown := runtime.NumGoroutine() - base
	st := replica.Stats()
	t.Logf("goroutines grew by %d for %d changes; notifications dropped: %d", grown, changes, st.DroppedNotifications)
	require.Equal(t, changes, st.Records)
	require.Equal(t, uint64(changes-workers), st.DroppedNotifications, "the notifications beyond the budget are counted")
	require.LessOrEqual(t, grown, 3*workers, "a notification costs its own goroutine and the overlay's few")

	require.NoError(t, replica.Close())
	require.Zero(t, replica.notifies.InUse(), "Close ended the notifications waiting for the silent watcher")
	require.True(t, errors.Is(ErrClosed, net.ErrClosed))
}
