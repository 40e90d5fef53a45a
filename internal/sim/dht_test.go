package sim_test

import (
	"context"
	"flag"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2psock/p2psock/dht"
	"github.com/p2psock/p2psock/internal/benchnet"
	"github.com/p2psock/p2psock/internal/sim"
	"github.com/p2psock/p2psock/internal/testnet/ovnet"
	"github.com/p2psock/p2psock/overlay"
)

var (
	dhtN       = flag.Int("dht.n", 40, "nodes alive at once in TestVirtualNetworkDHTChurn")
	dhtSeeded  = flag.Int("dht.seeded", 0, "of the first -dht.n nodes, those whose tables are seeded from the global view (the others join)")
	dhtValues  = flag.Int("dht.values", 40, "values added before the churn")
	dhtTTL     = flag.Duration("dht.ttl", 24*time.Hour, "their TTL")
	dhtFor     = flag.Duration("dht.for", 6*time.Minute, "virtual time of churn")
	dhtSession = flag.Duration("dht.session", 3*time.Minute, "median session time (virtual): Weibull lives, a replacement joins when a node ends")
	dhtShape   = flag.Float64("dht.shape", 0.5, "shape of the Weibull law of session times (below 1: many short sessions, a long tail)")
	dhtCrash   = flag.Float64("dht.crash", 0.5, "share of the sessions that end in a crash (the rest Close)")
	dhtChecks  = flag.Int("dht.checks", 4, "times every value is read during the churn (evenly spaced, the last at its end)")
	dhtWant    = flag.Float64("dht.want", 0.95, "share of the values a live node must hold at the last check (the Gets must find 5 points fewer at least)")
)

// Nodes running the DHT come and go, each living a session time drawn
// from a Weibull law (shape below 1, as measured in deployed P2P networks:
// most sessions short, a long tail), replaced by a new node when it ends,
// half of them crashing; values added before the churn are read from a
// random live node at times: the share still found is the DHT's
// durability. The first nodes' sessions start together, so the first
// minutes see the most departures.
func TestVirtualNetworkDHTChurn(t *testing.T) {
	if raceEnabled {
		t.Skip("crashes the runtime under the race detector (see raceEnabled)")
	}
	synctest.Test(t, func(t *testing.T) {
		r := dhtChurn(t, newNetwork(t, 3))
		t.Log(r.table())
		last := r.checks[len(r.checks)-1]
		if float64(last.held) < *dhtWant*float64(r.added) {
			t.Errorf("%d of %d values held by a live node at the end of the churn, want %.0f %%", last.held, r.added, 100**dhtWant)
		}
		if float64(last.found) < (*dhtWant-0.05)*float64(r.added) {
			t.Errorf("%d of %d values found at the end of the churn, want %.0f %%", last.found, r.added, 100*(*dhtWant-0.05))
		}
	})
}

type dhtCheck struct {
	at                   time.Duration // since the churn started (virtual)
	live, ended, joined  int
	held                 int // values a live node holds (the ground truth)
	found, failed        int // values found by a Get (retried once from another node); Gets that failed
	getLatency           []time.Duration
	recordsPerLiveMember float64
}

type dhtResult struct {
	n, values, added int
	addLatency       []time.Duration
	joinFailed       int
	checks           []dhtCheck
	cpu              time.Duration
	pktsPerNodeSec   float64
	bytesPerNodeSec  float64
}

func (r dhtResult) table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n%d nodes alive at once running the DHT, sessions Weibull (shape %.2f, median %v), %.0f %% crash; %d of %d values added (Add median %v); joins failed: %d; %.1f packets, %.0f B per node per second during the churn; CPU %v\n",
		r.n, *dhtShape, *dhtSession, 100**dhtCrash, r.added, r.values, benchnet.Percentile(r.addLatency, 50, time.Millisecond), r.joinFailed, r.pktsPerNodeSec, r.bytesPerNodeSec, r.cpu.Round(time.Second))
	b.WriteString("\n| virtual time | sessions ended / joined | values held by a live node | values found by a Get | Gets failed (then retried) | Get median / p99 | records held per live node |\n|---|---|---|---|---|---|---|")
	for _, c := range r.checks {
		fmt.Fprintf(&b, "\n| %v | %d / %d | %d/%d (%.1f %%) | %d/%d (%.1f %%) | %d | %v / %v | %.1f |", c.at.Round(time.Second), c.ended, c.joined,
			c.held, r.added, 100*float64(c.held)/float64(max(r.added, 1)), c.found, r.added, 100*float64(c.found)/float64(max(r.added, 1)), c.failed,
			benchnet.Percentile(c.getLatency, 50, time.Millisecond), benchnet.Percentile(c.getLatency, 99, time.Millisecond), c.recordsPerLiveMember)
	}
	return b.String()
}

type dhtNode struct {
	nd *ovnet.Node
	d  *dht.DHT
}

func dhtChurn(t *testing.T, nw *sim.Network) dhtResult {
	n := *dhtN
	res := dhtResult{n: n, values: *dhtValues}
	rng := mrand.New(mrand.NewPCG(3, 3))
	var (
		mu     sync.Mutex
		live   = map[*ovnet.Node]*dhtNode{}
		ended  atomic.Int64
		joined atomic.Int64
		failed atomic.Int64
		next   atomic.Int64
	)
	attach := func(nd *ovnet.Node) error {
		d, err := dht.New(nd.Overlay, dht.Config{})
		if err != nil {
			return err
		}
		nd.Closers = append(nd.Closers, d.Close)
		mu.Lock()
		live[nd] = &dhtNode{nd: nd, d: d}
		mu.Unlock()
		return nil
	}
	first := build(t, nw, n, *dhtSeeded, 16, overlay.Config{}, attach, func(*ovnet.Node) {})
	next.Store(int64(n))
	time.Sleep(10 * time.Second)

	randomLive := func(not *ovnet.Node) *dhtNode {
		mu.Lock()
		defer mu.Unlock()
		i := rng.IntN(len(live))
		for _, x := range live {
			if i == 0 && x.nd != not {
				return x
			}
			i = max(i-1, 0)
		}
		for _, x := range live {
			return x
		}
		return nil
	}
	keys := make([]string, 0, *dhtValues)
	for i := range *dhtValues {
		key := fmt.Sprintf("value %d", i)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		t0 := time.Now()
		err := randomLive(nil).d.Add(ctx, key, []byte(key), *dhtTTL)
		cancel()
		if err != nil {
			t.Logf("add %d: %v", i, err)
			continue
		}
		res.addLatency = append(res.addLatency, time.Since(t0))
		keys = append(keys, key)
	}
	res.added = len(keys)

	// Weibull: scale = median / ln(2)^(1/shape).
	scale := float64(*dhtSession) / math.Pow(math.Ln2, 1 / *dhtShape)
	var rmu sync.Mutex
	session := func() (time.Duration, bool) {
		rmu.Lock()
		defer rmu.Unlock()
		u := 1 - rng.Float64()
		return time.Duration(scale * math.Pow(-math.Log(u), 1 / *dhtShape)), rng.Float64() < *dhtCrash
	}
	ctx, cancel := context.WithCancel(context.Background())
	start := time.Now()
	p0, b0, cpu0 := nw.Sent.Load(), nw.Bytes.Load(), benchnet.CPUTime()
	var slots sync.WaitGroup
	for _, nd := range first {
		slots.Go(func() {
			for nd != nil {
				life, crash := session()
				select {
				case <-time.After(life):
				case <-ctx.Done():
					return
				}
				mu.Lock()
				dn := live[nd]
				delete(live, nd)
				mu.Unlock()
				if pc := nw.Conn(netip.MustParseAddrPort(dn.nd.Addr())); crash && pc != nil {
					pc.Crash() // silent from now on: its Close sends nothing
				}
				nd.Close()
				ended.Add(1)
				nd = nil
				for nd == nil && ctx.Err() == nil { // a replacement joins
					i := int(next.Add(1) - 1)
					pc, err := nw.Listen(i, nodePort)
					if err != nil {
						t.Error(err)
						return
					}
					nnd, err := ovnet.Open(overlay.Config{}, "", pc, attach)
					if err != nil {
						t.Error(err)
						return
					}
					entry := randomLive(nnd)
					if err := nnd.Bind([]string{entry.nd.Addr()}); err != nil {
						failed.Add(1)
						mu.Lock()
						delete(live, nnd)
						mu.Unlock()
						continue
					}
					joined.Add(1)
					nd = nnd
				}
			}
		})
	}
	for c := range *dhtChecks {
		time.Sleep(time.Until(start.Add(*dhtFor * time.Duration(c+1) / time.Duration(*dhtChecks))))
		chk := dhtCheck{at: time.Since(start), ended: int(ended.Load()), joined: int(joined.Load())}
		mu.Lock()
		chk.live = len(live)
		held := 0
		heldKeys := map[string]bool{}
		for _, x := range live {
			h := x.d.Held(math.MaxInt)
			held += len(h)
			for _, r := range h {
				heldKeys[r.Key] = true
			}
		}
		chk.held = len(heldKeys)
		chk.recordsPerLiveMember = float64(held) / float64(max(chk.live, 1))
		mu.Unlock()
		var wg sync.WaitGroup
		var cmu sync.Mutex
		sem := make(chan struct{}, 16)
		for _, key := range keys {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				for try := range 2 {
					from := randomLive(nil)
					gctx, gcancel := context.WithTimeout(context.Background(), 20*time.Second)
					t0 := time.Now()
					rs, err := from.d.Get(gctx, key)
					gcancel()
					cmu.Lock()
					if err != nil {
						chk.failed++
						cmu.Unlock()
						continue
					}
					if try == 0 {
						chk.getLatency = append(chk.getLatency, time.Since(t0))
					}
					for _, r := range rs {
						if string(r.Value) == key {
							chk.found++
							break
						}
					}
					cmu.Unlock()
					return
				}
			})
		}
		wg.Wait()
		res.checks = append(res.checks, chk)
		t.Logf("after %v: %d of %d values held, %d found, %d sessions ended", chk.at.Round(time.Second), chk.held, res.added, chk.found, chk.ended)
	}
	elapsed := time.Since(start)
	res.cpu = benchnet.CPUTime() - cpu0
	res.pktsPerNodeSec = float64(nw.Sent.Load()-p0) / float64(n) / elapsed.Seconds()
	res.bytesPerNodeSec = float64(nw.Bytes.Load()-b0) / float64(n) / elapsed.Seconds()
	res.joinFailed = int(failed.Load())
	cancel()
	slots.Wait()
	mu.Lock()
	rest := make([]*ovnet.Node, 0, len(live))
	for nd := range live {
		rest = append(rest, nd)
	}
	mu.Unlock()
	for _, nd := range rest {
		nd.Close()
	}
	return res
}
