package hostile

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/overlay"
)

// Plan says what Measure does: every operation starts at a random honest
// node.
type Plan struct {
	SendTo    int           // messages by ID, each to a random other honest node
	SendToKey int           // messages to random keys
	Lookups   int           // lookups over disjoint paths of random keys
	Timeout   time.Duration // per operation; default 20s
	Parallel  int           // operations at once; default 4
}

// Result counts what Measure saw.
type Result struct {
	SendTo   int // messages by ID sent
	SendToOK int // of them, acknowledged by their destination and delivered to it
	// SendToKey is the number of messages sent to keys; SendToKeyExact of
	// them were acknowledged by, and delivered to, the honest node closest
	// to the key.
	SendToKey      int
	SendToKeyExact int
	Lookups        int // lookups made
	LookupsClosest int // of them, those whose result held the honest node closest to the key
	// Failures describes the first operations that missed, for the logs.
	Failures []string
}

// maxFailures bounds Result.Failures.
const maxFailures = 10

// Measure sends messages and makes lookups among the honest nodes of the
// network as p says, and counts those that reached the right node. Messages
// are told apart by their payload; Measure reads the honest nodes' Recv
// queues while it runs.
func (n *Network) Measure(ctx context.Context, p Plan) Result {
	if p.Timeout <= 0 {
		p.Timeout = 20 * time.Second
	}
	if p.Parallel <= 0 {
		p.Parallel = 4
	}
	honest := n.Honest()
	var (
		mu      sync.Mutex
		waiting = map[string]chan overlay.ID{} // payload -> the nodes it reached
		res     Result
	)
	rctx, stop := context.WithCancel(ctx)
	var recv sync.WaitGroup
	for _, nd := range honest {
		recv.Go(func() {
			for {
				m, err := nd.Recv(rctx)
				if err != nil {
					return
				}
				mu.Lock()
				ch := waiting[string(m.Data)]
				mu.Unlock()
				if ch != nil {
					select {
					case ch <- nd.ID():
					default:
					}
				}
			}
		})
	}
	defer func() {
		stop()
		recv.Wait()
	}()
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(res.Failures) < maxFailures {
			res.Failures = append(res.Failures, fmt.Sprintf(format, args...))
		}
	}
	closestHonest := func(key overlay.Key) overlay.ID {
		best := honest[0].ID()
		for _, nd := range honest[1:] {
			if key.Closer(nd.ID().Key(), best.Key()) {
				best = nd.ID()
			}
		}
		return best
	}
	// send sends a message from a random honest node to dest and reports
	// whether want acknowledged it and received it.
	send := func(i int, dest overlay.Key, byKey bool, want overlay.ID) bool {
		from := honest[testnet.Intn(len(honest))]
		for !byKey && from.ID() == want && len(honest) > 1 {
			from = honest[testnet.Intn(len(honest))]
		}
		payload := fmt.Sprintf("measure %d %v", i, byKey)
		ch := make(chan overlay.ID, 8)
		mu.Lock()
		waiting[payload] = ch
		mu.Unlock()
		defer func() {
			mu.Lock()
			delete(waiting, payload)
			mu.Unlock()
		}()
		sctx, cancel := context.WithTimeout(ctx, p.Timeout)
		defer cancel()
		_, by, err := from.SendService(sctx, 0, []byte(payload), dest, byKey)
		if err != nil {
			fail("send %d (by key %v) from %v to %v: %v", i, byKey, from.ID(), dest, err)
			return false
		}
		if by != want {
			fail("send %d (by key %v) from %v to %v: acknowledged by %v, not %v (hostile: %v)", i, byKey, from.ID(), dest, by, want, n.IsHostile(by))
			return false
		}
		// The destination delivers before it acknowledges; its Recv
		// reader may not have seen the message yet.
		t := time.NewTimer(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case at := <-ch:
				if at == want {
					return true
				}
			case <-t.C:
				fail("send %d (by key %v) to %v: acknowledged, never received", i, byKey, dest)
				return false
			case <-ctx.Done():
				return false
			}
		}
	}
	lookup := func(i int) bool {
		var key overlay.Key
		rand.Read(key[:])
		want := closestHonest(key)
		from := honest[testnet.Intn(len(honest))]
		if from.ID() == want {
			return true // a node knows itself
		}
		lctx, cancel := context.WithTimeout(ctx, p.Timeout)
		defer cancel()
		ids, err := from.LookupDisjoint(lctx, key)
		if err != nil || !slices.Contains(ids, want) {
			fail("lookup %d of %v from %v: %d nodes, not the closest honest %v (err %v)", i, key, from.ID(), len(ids), want, err)
			return false
		}
		return true
	}

	type op struct {
		kind int // 0 SendTo, 1 SendToKey, 2 lookup
		i    int
	}
	var ops []op
	for i := range p.SendTo {
		ops = append(ops, op{0, i})
	}
	for i := range p.SendToKey {
		ops = append(ops, op{1, i})
	}
	for i := range p.Lookups {
		ops = append(ops, op{2, i})
	}
	work := make(chan op)
	var wg sync.WaitGroup
	for range p.Parallel {
		wg.Go(func() {
			for o := range work {
				var ok bool
				switch o.kind {
				case 0:
					to := honest[testnet.Intn(len(honest))].ID()
					ok = send(o.i, to.Key(), false, to)
				case 1:
					var key overlay.Key
					rand.Read(key[:])
					ok = send(o.i, key, true, closestHonest(key))
				case 2:
					ok = lookup(o.i)
				}
				mu.Lock()
				switch o.kind {
				case 0:
					res.SendTo++
					if ok {
						res.SendToOK++
					}
				case 1:
					res.SendToKey++
					if ok {
						res.SendToKeyExact++
					}
				case 2:
					res.Lookups++
					if ok {
						res.LookupsClosest++
					}
				}
				mu.Unlock()
			}
		})
	}
	for _, o := range ops {
		if ctx.Err() != nil {
			break
		}
		work <- o
	}
	close(work)
	wg.Wait()
	return res
}
