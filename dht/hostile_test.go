package dht

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/internal/testnet/hostile"
	"github.com/p2psock/p2psock/internal/testnet/ovnet"
	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/overlay"
)

// hostileDHT builds a network of n nodes on addresses of their own, a share
// of them hostile with behaviour b; every honest node runs the DHT with
// cfg. dhts[i] runs on the i-th honest node.
func hostileDHT(t *testing.T, n int, share float64, b hostile.Behaviour, cfg Config) (*hostile.Network, []*DHT) {
	t.Helper()
	var mu sync.Mutex
	byNode := map[*ovnet.Node]*DHT{}
	// Joining nodes wait for their neighbours' confirmation at most
	// SendTimeout, which hostile neighbours never give: 3 s keeps the
	// network's start short.
	ocfg := overlay.Config{Logger: testnet.Logger(t), SendTimeout: 3 * time.Second}
	nw, err := hostile.Build(hostile.Options{N: n, Hostile: share, Behave: b, Config: ocfg, Parallel: n,
		Attach: func(_ int, nd *ovnet.Node) error {
			d, err := New(nd.Overlay, cfg)
			if err != nil {
				return err
			}
			nd.Closers = append(nd.Closers, d.Close)
			mu.Lock()
			byNode[nd] = d
			mu.Unlock()
			return nil
		}})
	require.NoError(t, err)
	t.Cleanup(nw.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nw.Settle(ctx)
	var dhts []*DHT
	for _, nd := range nw.Honest() {
		dhts = append(dhts, byNode[nd])
	}
	return nw, dhts
}

// In a network where a fifth of the nodes are hostile and more have gone
// silent (they take part in lookups, then answer nothing), Close ends every
// call in progress with ErrClosed and every background request (republish,
// handoff, notifications), although the calls' own contexts would let them
// wait ten minutes; then no goroutine is left (CheckLeaks).
func TestHostileDHTCloseEndsEverythingPromptly(t *testing.T) {
	testnet.CheckLeaks(t)
	nw, dhts := hostileDHT(t, 20, 0.2, hostile.All, Config{Republish: 200 * time.Millisecond})
	// Nodes that fall silent once they are known: replicas that never answer.
	var silent []*ovnet.SilentConn
	for i := range 4 {
		sc, err := ovnet.ListenSilent(testnet.DistinctLoopbackAddr(200 + i))
		require.NoError(t, err)
		nd, err := ovnet.Open(overlay.Config{Logger: testnet.Logger(t), SendTimeout: 3 * time.Second}, "", sc, nil)
		if err != nil {
			sc.Close()
			t.Fatal(err)
		}
		require.NoError(t, nd.Bind([]string{nw.Nodes[0].Addr()}))
		t.Cleanup(func() { nd.Close() })
		silent = append(silent, sc)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	nw.Settle(ctx)
	cancel()
	for _, sc := range silent {
		sc.Silence()
	}

	long, cancelLong := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancelLong()
	var calls sync.WaitGroup
	errs := make(chan error, 1000)
	for i, d := range dhts {
		for j := range 4 {
			key := fmt.Sprintf("key %d/%d", i, j)
			calls.Go(func() { // until Close ends it
				for long.Err() == nil {
					if err := d.Add(long, key, []byte("v"), 0); errors.Is(err, ErrClosed) {
						errs <- err
						return
					}
					if _, err := d.Get(long, key); errors.Is(err, ErrClosed) {
						errs <- err
						return
					}
				}
				errs <- long.Err()
			})
		}
		calls.Go(func() {
			if _, err := d.Watch(long, fmt.Sprintf("watched %d", i)); err != nil && !errors.Is(err, ErrNoReplica) {
				errs <- err
			}
		})
	}
	testnet.Eventually(t, 30*time.Second, "silent nodes are asked", func() bool {
		for _, sc := range silent {
			if sc.Dropped() > 0 {
				return true
			}
		}
		return false
	})

	closed := make(chan struct{})
	go func() {
		var wg sync.WaitGroup
		for _, d := range dhts {
			wg.Go(func() { d.Close() })
		}
		wg.Wait()
		close(closed)
	}()
	ended := make(chan struct{})
	go func() {
		calls.Wait()
		close(ended)
	}()
	testnet.Eventually(t, 30*time.Second, "every Close returns and every call ends", func() bool {
		select {
		case <-closed:
		default:
			return false
		}
		select {
		case <-ended:
			return true
		default:
			return false
		}
	})
	close(errs)
	for err := range errs {
		require.ErrorIs(t, err, net.ErrClosed, "a call ended by Close")
	}
	for _, d := range dhts {
		require.Zero(t, d.notifies.InUse())
	}
}

// With a fifth of the nodes hostile (they drop what they should forward,
// name only each other in lookups and withhold the records they are given),
// Get returns every value added, at least 95 % of the time: replica sets
// come from lookups over disjoint paths, writes go to every replica and
// reads take the union of the replicas.
func TestHostileDHTGetCompleteWithFifthHostile(t *testing.T) {
	testnet.CheckLeaks(t)
	nw, dhts := hostileDHT(t, 30, 0.2, hostile.All, Config{})
	require.Len(t, dhts, 24)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	const keys = 20
	added := 0
	for i := range keys {
		if err := dhts[i%len(dhts)].Add(ctx, fmt.Sprintf("key %d", i), fmt.Appendf(nil, "value %d", i), 0); err == nil {
			added++
		} else {
			t.Logf("add %d: %v", i, err)
		}
	}
	var mu sync.Mutex
	complete, gets := 0, 0
	var wg sync.WaitGroup
	for i := range keys {
		for r := range 3 {
			reader := dhts[(i*7+r*5+3)%len(dhts)]
			wg.Go(func() {
				rs, err := reader.Get(ctx, fmt.Sprintf("key %d", i))
				mu.Lock()
				defer mu.Unlock()
				gets++
				if err == nil && len(rs) == 1 && string(rs[0].Value) == fmt.Sprintf("value %d", i) {
					complete++
				}
			})
		}
	}
	wg.Wait()
	hostileIn := 0
	for i := range keys {
		ids, err := dhts[0].replicas(ctx, fmt.Sprintf("key %d", i))
		if err == nil {
			for _, id := range ids {
				if nw.IsHostile(id) {
					hostileIn++
				}
			}
		}
	}
	t.Logf("20 %% hostile, 30 nodes: %d of %d adds succeeded, Get complete %d of %d (%.0f %%); hostile replicas %d in %d sets",
		added, keys, complete, gets, 100*float64(complete)/float64(gets), hostileIn, keys)
	require.GreaterOrEqual(t, float64(complete), 0.95*float64(gets), "Get complete at least 95 %% of the time")
}

// withholdDHT is the DHT handler of a replica that accepts every store and
// returns nothing to reads.
func withholdDHT(m overlay.Message) ([]byte, bool) {
	if len(m.Data) > 0 && m.Data[0] == reqGet {
		return []byte{statusOK, 0, 0, 0, 0, 0, 0}, true
	}
	return []byte{statusOK}, true
}

// groundNear returns a private key whose ID shares at least bits leading
// bits with k.
func groundNear(t *testing.T, k overlay.Key, bits int) ed25519.PrivateKey {
	t.Helper()
	for {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		require.NoError(t, err)
		id := overlay.ID(priv.Public().(ed25519.PublicKey)).Key()
		shared := 0
		for shared < bits && (id[shared/8]^k[shared/8])&(0x80>>(shared%8)) == 0 {
			shared++
		}
		if shared >= bits {
			return priv
		}
	}
}

// Fifty identities ground next to a key and run from one IP address, which
// accept every record and return none, do not hide the key's values: a
// replica set holds at most one of them, and Get returns the value added
// before they came and one added after.
func TestHostileDHTSybilsOnOneAddressNearAKey(t *testing.T) {
	testnet.CheckLeaks(t)
	nw, dhts := hostileDHT(t, 20, 0, hostile.Behaviour{}, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	const key = "room:lobby"
	require.NoError(t, dhts[3].Add(ctx, key, []byte("before"), 0))

	k := overlay.KeyOf([]byte(key))
	sybil := map[overlay.ID]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 50 {
		priv := groundNear(t, k, 8)
		wg.Go(func() {
			cfg := overlay.Config{Identity: priv, Logger: testnet.Logger(t), SendTimeout: 3 * time.Second}
			nd, err := ovnet.Open(cfg, "127.0.0.250:0", nil, func(nd *ovnet.Node) error {
				nd.Handle(wire.ServiceDHT, withholdDHT)
				return nil
			})
			if err != nil {
				return
			}
			if nd.Bind([]string{nw.Nodes[i%len(nw.Nodes)].Addr()}) != nil {
				return // Bind closed it
			}
			mu.Lock()
			defer mu.Unlock()
			sybil[nd.ID()] = true
			t.Cleanup(func() { nd.Close() })
		})
	}
	wg.Wait()
	require.GreaterOrEqual(t, len(sybil), 45, "the Sybils joined")
	nw.Settle(ctx)
	require.NoError(t, dhts[11].Add(ctx, key, []byte("after"), 0))

	complete := 0
	const gets = 10
	for i := range gets {
		d := dhts[(i*3+1)%len(dhts)]
		ids, err := d.replicas(ctx, key)
		require.NoError(t, err)
		in := 0
		for _, id := range ids {
			if sybil[id] {
				in++
			}
		}
		require.LessOrEqual(t, in, 1, "a replica set holds at most one node of a subnet")
		rs, err := d.Get(ctx, key)
		if err == nil && slices.Equal(values(rs), []string{"after", "before"}) {
			complete++
		} else {
			t.Logf("get %d from a set of %d (%d Sybil): %v %v", i, len(ids), in, values(rs), err)
		}
	}
	t.Logf("50 Sybils on one address near the key: Get complete %d of %d", complete, gets)
	require.Equal(t, gets, complete, "the Sybils hide no value")
}
