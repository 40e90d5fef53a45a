package sim_test

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2psock/p2psock/internal/benchnet"
	"github.com/p2psock/p2psock/internal/sim"
	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/internal/testnet/ovnet"
	"github.com/p2psock/p2psock/overlay"
)

var (
	churnN     = flag.Int("churn.n", defaultChurnNodes, "stable full nodes of TestVirtualNetworkChurn")
	churnM     = flag.Int("churn.m", defaultChurners, "churners alive at once in TestVirtualNetworkChurn")
	churnAs    = flag.String("churn.as", "both", "the churners join as client, full or both (one phase each)")
	churnMin   = flag.Duration("churn.min", 2*time.Second, "shortest life of a churner (virtual)")
	churnMax   = flag.Duration("churn.max", 8*time.Second, "longest life of a churner (virtual)")
	churnCrash = flag.Float64("churn.crash", 0.5, "share of the churners that crash (no Leave)")
	churnFor   = flag.Duration("churn.for", defaultChurnDuration, "measured time of each phase (virtual)")
	churnRate  = flag.Float64("churn.rate", 10, "SendToKey per second among the stable nodes")
)

// Stable full nodes send to random keys while churners come and go, on the
// virtual network: a phase without churn, then the churners as light
// clients, then as full members (the same scenario as overlaybench -churn
// on loopback, in virtual time: a node's timers are not late because the
// process that runs ten thousand of them is busy). With clients, every
// message reaches the XOR-closest full node.
func TestVirtualNetworkChurn(t *testing.T) {
	if raceEnabled {
		t.Skip("crashes the runtime under the race detector (see raceEnabled)")
	}
	synctest.Test(t, func(t *testing.T) {
		nw := newNetwork(t, 2)
		c := &churn{t: t, nw: nw, full: map[overlay.ID]bool{}, joining: map[overlay.ID]bool{}, delivered: map[string]overlay.ID{}}
		stable := build(t, nw, *churnN, 0, 16, overlay.Config{}, nil, c.receive)
		c.stable = stable
		c.next.Store(int64(len(stable)))
		defer func() {
			for _, nd := range stable {
				nd.Close()
			}
		}()
		time.Sleep(10 * time.Second)
		phases := []string{"baseline"}
		switch *churnAs {
		case "both":
			phases = append(phases, "client", "full")
		default:
			phases = append(phases, *churnAs)
		}
		var rows []phaseResult
		for _, ph := range phases {
			rows = append(rows, c.phase(ph))
		}
		t.Log(churnTable(*churnN, *churnM, rows))
		for _, r := range rows {
			if r.name != "full" && r.exact < r.acked {
				t.Errorf("%s: %d of %d acknowledged SendToKey reached the XOR-closest full node", r.name, r.exact, r.acked)
			}
		}
	})
}

type churn struct {
	t      *testing.T
	nw     *sim.Network
	stable []*ovnet.Node
	next   atomic.Int64 // next host number

	mu        sync.Mutex
	full      map[overlay.ID]bool // bound full churners
	joining   map[overlay.ID]bool // full churners in their Bind
	delivered map[string]overlay.ID
}

func (c *churn) receive(nd *ovnet.Node) {
	go func() {
		for {
			m, err := nd.Recv(context.Background())
			if err != nil {
				return
			}
			c.mu.Lock()
			c.delivered[string(m.Data)] = nd.ID()
			c.mu.Unlock()
		}
	}()
}

// closest is the full node closest to key: stable, or a bound full
// churner, or (joining) one still in its Bind.
func (c *churn) closest(key overlay.Key, joining bool) overlay.ID {
	best := ovnet.Closest(c.stable, key)
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range c.full {
		if key.Closer(id.Key(), best.Key()) {
			best = id
		}
	}
	if joining {
		for id := range c.joining {
			if key.Closer(id.Key(), best.Key()) {
				best = id
			}
		}
	}
	return best
}

type phaseResult struct {
	name                      string
	sends, acked, exact       int
	exactJoining              int // exact, the full churners in their Bind included
	failed, unread            int
	joined, joinFailed, crash int
	bind                      []time.Duration
	latency                   []time.Duration
	pktsPerNodeSec            float64
	cpu                       time.Duration
}

// phase runs one phase: as "baseline" (no churners), "client" or "full".
func (c *churn) phase(name string) phaseResult {
	r := phaseResult{name: name}
	ctx, cancel := context.WithCancel(context.Background())
	var churners sync.WaitGroup
	var rmu sync.Mutex
	if name != "baseline" {
		for slot := range *churnM {
			churners.Go(func() {
				rng := mrand.New(mrand.NewPCG(uint64(slot), uint64(c.next.Load())))
				// Slots start spread over the shortest life.
				time.Sleep(time.Duration(int64(*churnMin) * int64(slot) / int64(*churnM)))
				for ctx.Err() == nil {
					life := *churnMin + time.Duration(rng.Int64N(int64(*churnMax-*churnMin)+1))
					crash := rng.Float64() < *churnCrash
					bind, ok := c.churner(ctx, name == "client", life, crash)
					rmu.Lock()
					if ok {
						r.joined++
						r.bind = append(r.bind, bind)
						if crash {
							r.crash++
						}
					} else if ctx.Err() == nil {
						r.joinFailed++
					}
					rmu.Unlock()
				}
			})
		}
		time.Sleep(*churnMax) // warm-up: every slot has had a churner
	}

	p0, cpu0 := c.nw.Sent.Load(), benchnet.CPUTime()
	start := time.Now()
	var sends sync.WaitGroup
	type sent struct {
		data     string
		want     [4]overlay.ID // closest at the start and at the acknowledgement; then the same, joining ones included
		acked    bool
		duration time.Duration
	}
	var out []*sent
	gap := time.Duration(float64(time.Second) / *churnRate)
	for i := 0; time.Since(start) < *churnFor; i++ {
		var key overlay.Key
		rand.Read(key[:])
		s := &sent{data: fmt.Sprintf("%s %d", name, i)}
		out = append(out, s)
		from := c.stable[testnet.Intn(len(c.stable))]
		sends.Go(func() {
			s.want[0], s.want[2] = c.closest(key, false), c.closest(key, true)
			sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
			t0 := time.Now()
			err := from.Send(sctx, []byte(s.data), key, true)
			scancel()
			s.duration = time.Since(t0)
			s.want[1], s.want[3] = c.closest(key, false), c.closest(key, true)
			s.acked = err == nil
		})
		time.Sleep(gap)
	}
	sends.Wait()
	elapsed := time.Since(start)
	r.cpu = benchnet.CPUTime() - cpu0
	r.pktsPerNodeSec = float64(c.nw.Sent.Load()-p0) / float64(len(c.stable)) / elapsed.Seconds()
	cancel()
	churners.Wait()
	time.Sleep(time.Second) // the last deliveries are read
	c.mu.Lock()
	for _, s := range out {
		r.sends++
		if !s.acked {
			r.failed++
			continue
		}
		r.acked++
		r.latency = append(r.latency, s.duration)
		at, ok := c.delivered[s.data]
		if !ok {
			r.unread++
			continue
		}
		if at == s.want[0] || at == s.want[1] {
			r.exact++
		}
		if at == s.want[0] || at == s.want[1] || at == s.want[2] || at == s.want[3] {
			r.exactJoining++
		}
	}
	c.mu.Unlock()
	return r
}

// churner runs one churner: it binds through a random stable node, lives
// life from the end of its Bind, and ends by a crash or a Close. It returns
// how long its Bind took and whether it bound.
func (c *churn) churner(ctx context.Context, client bool, life time.Duration, crash bool) (time.Duration, bool) {
	i := int(c.next.Add(1) - 1)
	pc, err := c.nw.Listen(i, nodePort)
	if err != nil {
		c.t.Error(err)
		return 0, false
	}
	nd, err := ovnet.Open(overlay.Config{Client: client}, "", pc, nil)
	if err != nil {
		pc.Close()
		c.t.Error(err)
		return 0, false
	}
	c.receive(nd)
	if !client {
		c.mu.Lock()
		c.joining[nd.ID()] = true
		c.mu.Unlock()
	}
	t0 := time.Now()
	err = nd.Bind([]string{c.stable[testnet.Intn(len(c.stable))].Addr()})
	bind := time.Since(t0)
	c.mu.Lock()
	delete(c.joining, nd.ID())
	c.mu.Unlock()
	if err == nil {
		if !client {
			c.mu.Lock()
			c.full[nd.ID()] = true
			c.mu.Unlock()
		}
		select {
		case <-time.After(life):
		case <-ctx.Done():
		}
	}
	c.mu.Lock()
	delete(c.full, nd.ID())
	c.mu.Unlock()
	if crash {
		pc.Crash()
	}
	nd.Close()
	return bind, err == nil
}

func churnTable(n, m int, rows []phaseResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n| %d stable full nodes, %d churners, virtual network |", n, m)
	for _, r := range rows {
		fmt.Fprintf(&b, " %s |", r.name)
	}
	b.WriteString("\n|---|")
	for range rows {
		b.WriteString("---|")
	}
	row := func(label string, f func(r phaseResult) string) {
		fmt.Fprintf(&b, "\n| %s |", label)
		for _, r := range rows {
			fmt.Fprintf(&b, " %s |", f(r))
		}
	}
	row("churners joined / joins failed / crashed", func(r phaseResult) string {
		return fmt.Sprintf("%d / %d / %d", r.joined, r.joinFailed, r.crash)
	})
	row("churner's Bind, median / p99", func(r phaseResult) string {
		return fmt.Sprintf("%v / %v", benchnet.Percentile(r.bind, 50, time.Millisecond), benchnet.Percentile(r.bind, 99, time.Millisecond))
	})
	row("SendToKey delivered to the XOR-closest full node", func(r phaseResult) string {
		return fmt.Sprintf("%d/%d (%.2f %%)", r.exact, r.sends, 100*float64(r.exact)/float64(max(r.sends, 1)))
	})
	row("… the full churners in their Bind included", func(r phaseResult) string {
		return fmt.Sprintf("%d/%d (%.2f %%)", r.exactJoining, r.sends, 100*float64(r.exactJoining)/float64(max(r.sends, 1)))
	})
	row("SendToKey failed / acknowledged but never read", func(r phaseResult) string {
		return fmt.Sprintf("%d / %d", r.failed, r.unread)
	})
	row("SendToKey until acknowledged, median / p99", func(r phaseResult) string {
		return fmt.Sprintf("%v / %v", benchnet.Percentile(r.latency, 50, time.Millisecond), benchnet.Percentile(r.latency, 99, time.Millisecond))
	})
	row("packets sent per stable node per second (all senders)", func(r phaseResult) string {
		return fmt.Sprintf("%.1f", r.pktsPerNodeSec)
	})
	row("CPU of the phase", func(r phaseResult) string { return r.cpu.Round(time.Millisecond).String() })
	return b.String()
}
