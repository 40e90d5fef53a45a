package sim_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2psock/p2psock/internal/benchnet"
	"github.com/p2psock/p2psock/internal/sim"
	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/internal/testnet/ovnet"
	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/overlay"
)

var (
	simN      = flag.Int("sim.n", defaultNodes, "nodes of TestVirtualNetworkRouting")
	simSends  = flag.Int("sim.sends", 200, "SendToKey of TestVirtualNetworkRouting")
	simIdle   = flag.Duration("sim.idle", time.Minute, "virtual idle time measured by TestVirtualNetworkRouting")
	simJoin   = flag.Int("sim.join", 16, "nodes joining at once in TestVirtualNetworkRouting")
	simMem    = flag.String("sim.memprofile", "", "write a heap profile of TestVirtualNetworkRouting's idle network (in use, after GC) to this file")
	simLoss   = flag.Float64("sim.loss", 0, "probability that a datagram of the virtual networks is lost")
	simQueue  = flag.Int("sim.queue", 0, "datagrams a virtual socket holds (0: sim.QueueLen)")
	simOut    = flag.String("sim.results", "", "append TestVirtualNetworkRouting's figures to this file as a JSON line (the input of go run ./internal/cmd/simplot)")
	simPar    = flag.Int("sim.parallel", 1, "SendToKey of TestVirtualNetworkRouting in flight at once")
	simSettle = flag.Duration("sim.settle", 10*time.Second, "virtual time between the end of TestVirtualNetworkRouting's build and its measurements")
	simSeed   = flag.Int("sim.seeded", 0, "nodes of TestVirtualNetworkRouting whose tables are seeded from the global view (the first ones); the others join one batch of -sim.join after another")
	simRTT    = flag.String("sim.rtt", "ripe", "latency model of the virtual networks: ripe (measured, sim.RIPE) or plane (synthetic, sim.Plane)")
)

// newNetwork returns a virtual network with the latency model of -sim.rtt.
func newNetwork(t *testing.T, seed uint64) *sim.Network {
	t.Helper()
	nw := sim.New(seed)
	nw.Queue = *simQueue
	nw.Loss = *simLoss
	switch *simRTT {
	case "ripe":
		nw.Latency = sim.RIPE
	case "plane":
		nw.Latency = sim.Plane
	default:
		t.Fatalf("-sim.rtt %q: want ripe or plane", *simRTT)
	}
	return nw
}

// A network of overlay nodes on the virtual network (package sim) in a
// synctest bubble: every node joins, every SendToKey reaches the
// XOR-closest node, and the run reports what the network costs.
func TestVirtualNetworkRouting(t *testing.T) {
	if raceEnabled {
		t.Skip("crashes the runtime under the race detector (see raceEnabled)")
	}
	synctest.Test(t, func(t *testing.T) {
		r := simulate(t, *simN, *simSeed, *simJoin, *simSends, *simIdle)
		t.Log(r.table())
		if r.exact != r.sends {
			t.Errorf("%d of %d SendToKey reached the XOR-closest node", r.exact, r.sends)
		}
		if *simOut != "" {
			if err := r.appendTo(*simOut); err != nil {
				t.Error(err)
			}
		}
	})
}

// appendTo appends the figures to file as a JSON line.
func (r simResult) appendTo(file string) error {
	slices.Sort(r.hops)
	pct := func(p int) int {
		if len(r.hops) == 0 {
			return 0
		}
		return r.hops[min(len(r.hops)-1, len(r.hops)*p/100)]
	}
	ms := func(p int) float64 {
		return float64(benchnet.Percentile(r.latency, p, time.Microsecond)) / float64(time.Millisecond)
	}
	line, err := json.Marshal(map[string]any{
		"n": r.n, "seeded": r.seeded, "rtt": *simRTT, "sends": r.sends, "exact": r.exact,
		"hops_p50": pct(50), "hops_p99": pct(99), "hops_max": pct(100),
		"latency_ms_p50": ms(50), "latency_ms_p99": ms(99),
		"contacts": r.contacts, "heap_kib": r.heapPerNode / 1024, "goroutines": r.goroutinesPerNode,
		"idle_s": r.idle.Seconds(), "idle_pkts": r.idlePkts, "idle_bytes": r.idleBytes,
		"idle_cpu_us":   float64(r.idleCPU.Nanoseconds()) / 1e3 / float64(r.n) / r.idle.Seconds(),
		"pkts_per_send": r.packetsPerSend, "all_pkts_per_send": r.allPacketsPerSend,
		"build_cpu_s": r.buildCPU.Seconds(),
	})
	if err != nil {
		return err
	}
	f, err := os.OpenFile(file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(append(line, '\n'))
	return errors.Join(err, f.Close())
}

// A network whose first nodes got their tables from the global view
// (simhook.Seed, the way the large simulations start) and whose last ones
// joined it the real way routes every SendToKey to the XOR-closest node.
func TestVirtualNetworkSeeded(t *testing.T) {
	if raceEnabled {
		t.Skip("crashes the runtime under the race detector (see raceEnabled)")
	}
	synctest.Test(t, func(t *testing.T) {
		r := simulate(t, 250, 200, 16, 100, 10*time.Second)
		t.Log(r.table())
		if r.exact != r.sends {
			t.Errorf("%d of %d SendToKey reached the XOR-closest node", r.exact, r.sends)
		}
	})
}

type simResult struct {
	n, seeded           int
	sends, exact        int
	built               time.Duration // virtual
	buildCPU            time.Duration
	hops                []int
	latency             []time.Duration // SendToKey until acknowledged, virtual
	contacts            float64
	heapPerNode         float64
	goroutinesPerNode   float64
	idle                time.Duration
	idlePkts, idleBytes float64 // per node per virtual second
	idleCPU             time.Duration
	packetsPerSend      float64
	allPacketsPerSend   float64 // every datagram sent during the sends, per send
	queueDrops, lost    uint64
}

func (r simResult) table() string {
	slices.Sort(r.hops)
	pct := func(p int) int {
		if len(r.hops) == 0 {
			return 0
		}
		return r.hops[min(len(r.hops)-1, len(r.hops)*p/100)]
	}
	return fmt.Sprintf(`
| %d nodes, virtual network | value |
|---|---|
| built in (virtual time) / CPU | %v / %v |
| routing table size, mean | %.1f contacts |
| delivered to the XOR-closest node | %d/%d |
| hops per message, median / p99 / max | %d / %d / %d |
| SendToKey until acknowledged (virtual), median / p99 | %v / %v |
| packets sent per message (route frames and hop acks) / all packets sent during the sends, per message | %.1f / %.1f |
| memory per idle node (heap + stacks in use) | %.0f KiB |
| goroutines per idle node | %.1f |
| idle, per node per second: packets / bytes / CPU | %.2f / %.0f B / %.1f µs |
| datagrams dropped at a full queue / lost at a closed socket | %d / %d |`,
		r.n, r.built.Round(time.Millisecond), r.buildCPU.Round(time.Millisecond), r.contacts, r.exact, r.sends,
		pct(50), pct(99), pct(100), benchnet.Percentile(r.latency, 50, time.Millisecond), benchnet.Percentile(r.latency, 99, time.Millisecond), r.packetsPerSend, r.allPacketsPerSend, r.heapPerNode/1024, r.goroutinesPerNode,
		r.idlePkts, r.idleBytes, float64(r.idleCPU.Nanoseconds())/1e3/float64(r.n)/r.idle.Seconds(),
		r.queueDrops, r.lost)
}

// simulate builds n nodes, join at a time, each through a random bound
// node, sends sends messages to random keys, then lets the network idle.
func simulate(t *testing.T, n, seeded, join, sends int, idle time.Duration) simResult {
	nw := newNetwork(t, 1)
	res := simResult{n: n, seeded: min(seeded, n), sends: sends, idle: idle}
	var g0 int
	var m0 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	g0 = runtime.NumGoroutine()

	got := make(chan delivery, 1024)
	start, cpu0 := time.Now(), benchnet.CPUTime()
	nodes := build(t, nw, n, seeded, join, overlay.Config{}, nil, func(nd *ovnet.Node) { go receive(nd, got) })
	defer func() {
		for _, nd := range nodes {
			nd.Close()
		}
	}()
	res.built, res.buildCPU = time.Since(start), benchnet.CPUTime()-cpu0
	time.Sleep(*simSettle) // virtual: the last joins' lookups and refreshes end

	for _, nd := range nodes {
		res.contacts += float64(len(nd.Contacts()))
	}
	res.contacts /= float64(n)
	progress := func(what string) {
		if n >= 2000 {
			t.Logf("%s after %v CPU", what, (benchnet.CPUTime() - cpu0).Round(time.Second))
		}
	}
	progress("idle window starts")
	p0, b0, c0 := nw.Sent.Load(), nw.Bytes.Load(), benchnet.CPUTime()
	byType0 := sentByFirstByte(nw)
	time.Sleep(idle)
	res.idleCPU = benchnet.CPUTime() - c0
	logIdleByType(t, byType0, sentByFirstByte(nw), idle.Seconds()*float64(n))
	secs := idle.Seconds() * float64(n)
	res.idlePkts = float64(nw.Sent.Load()-p0) / secs
	res.idleBytes = float64(nw.Bytes.Load()-b0) / secs

	var m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m1)
	res.heapPerNode = float64(m1.HeapInuse+m1.StackInuse-m0.HeapInuse-m0.StackInuse) / float64(n)
	if *simMem != "" {
		f, err := os.Create(*simMem)
		if err != nil {
			t.Fatal(err)
		}
		if err := pprof.WriteHeapProfile(f); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	res.goroutinesPerNode = float64(runtime.NumGoroutine()-g0-n) / float64(n) // less the receivers

	// The sends, -sim.parallel at a time.
	progress("sends start")
	done := make(chan struct{})
	defer close(done)
	var dmu sync.Mutex
	delivered := map[string]delivery{}
	go func() {
		for {
			select {
			case d := <-got:
				dmu.Lock()
				delivered[string(d.msg.Data)] = d
				dmu.Unlock()
			case <-done:
				return
			}
		}
	}()
	type send struct {
		key     overlay.Key
		data    string
		latency time.Duration
		err     error
	}
	out := make([]send, sends)
	out0, all0 := routed(nw), nw.Sent.Load()
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(*simPar, 1))
	for i := range out {
		s := &out[i]
		from := nodes[testnet.Intn(len(nodes))]
		rand.Read(s.key[:])
		data := fmt.Appendf(make([]byte, 0, 100), "message %d ", i)
		data = append(data, make([]byte, 100-len(data))...) // 100 bytes, as overlaybench's
		s.data = string(data)
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			t0 := time.Now()
			s.err = from.Send(ctx, data, s.key, true)
			s.latency = time.Since(t0)
			cancel()
		})
	}
	wg.Wait()
	synctest.Wait() // the receivers have read what was delivered
	dmu.Lock()
	for i, s := range out {
		if s.err != nil {
			t.Logf("send %d: %v", i, s.err)
			continue
		}
		res.latency = append(res.latency, s.latency)
		d, ok := delivered[s.data]
		if !ok {
			continue
		}
		if d.at == ovnet.Closest(nodes, s.key) {
			res.exact++
		}
		res.hops = append(res.hops, d.msg.Hops)
	}
	dmu.Unlock()
	res.packetsPerSend = float64(routed(nw)-out0) / float64(max(sends, 1))
	res.allPacketsPerSend = float64(nw.Sent.Load()-all0) / float64(max(sends, 1))
	res.queueDrops, res.lost = nw.QueueDrops.Load(), nw.Lost.Load()
	return res
}

// nodePort is the port of build's nodes.
const nodePort = 4000

// build starts n nodes with cfg on hosts 0..n-1 of nw, with attach (nil:
// none) run on each before it starts, and calls started on each once it is
// bound. The first seeded nodes get their routing tables
// from the global view (seed); the others join join at a time, each through
// a random bound node.
func build(t *testing.T, nw *sim.Network, n, seeded, join int, cfg overlay.Config, attach func(*ovnet.Node) error, started func(*ovnet.Node)) []*ovnet.Node {
	nodes := make([]*ovnet.Node, 0, n)
	t0, cpu0 := time.Now(), benchnet.CPUTime()
	open := func(i int) *ovnet.Node { // the node of host i, not started
		pc, err := nw.Listen(i, nodePort)
		if err != nil {
			t.Fatal(err)
		}
		nd, err := ovnet.Open(cfg, "", pc, attach)
		if err != nil {
			t.Fatal(err)
		}
		return nd
	}
	if seeded = min(seeded, n); seeded > 1 {
		for i := range seeded {
			nodes = append(nodes, open(i))
			if (i+1)%10000 == 0 {
				t.Logf("%d nodes open after %v CPU", i+1, (benchnet.CPUTime() - cpu0).Round(time.Second))
			}
		}
		k := cfg.K
		if k == 0 {
			k = 20
		}
		seed(nw, nodes, k, mrand.New(mrand.NewPCG(uint64(n), 7)))
		for _, nd := range nodes {
			started(nd)
		}
		t.Logf("%d nodes seeded after %v CPU", seeded, (benchnet.CPUTime() - cpu0).Round(time.Second))
	}
	for len(nodes) < n {
		k := min(join, n-len(nodes))
		batch := make([]*ovnet.Node, k)
		errs := make([]error, k)
		var wg sync.WaitGroup
		for j := range k {
			nd := open(len(nodes) + j)
			batch[j] = nd
			var entries []string
			if len(nodes) > 0 {
				entries = []string{nodes[testnet.Intn(len(nodes))].Addr()}
			} else if j > 0 {
				entries = []string{batch[0].Addr()}
			}
			if len(nodes) == 0 && j > 0 {
				wg.Wait() // the first node is alone; the others join through it
			}
			wg.Go(func() { errs[j] = nd.Bind(entries) })
		}
		wg.Wait()
		for j, err := range errs {
			if err != nil {
				t.Fatalf("node %d: %v", len(nodes)+j, err)
			}
		}
		for _, nd := range batch {
			started(nd)
		}
		nodes = append(nodes, batch...)
		if len(nodes)%1000 < join && n >= 2000 {
			t.Logf("%d nodes bound after %v virtual, %v CPU", len(nodes), time.Since(t0).Round(time.Second), (benchnet.CPUTime() - cpu0).Round(time.Second))
		}
	}
	return nodes
}

type delivery struct {
	at  overlay.ID
	msg overlay.Message
}

func receive(nd *ovnet.Node, got chan<- delivery) {
	for {
		m, err := nd.Recv(context.Background())
		if err != nil {
			return
		}
		got <- delivery{nd.ID(), m}
	}
}

// routed counts the route frames and hop acks sent on nw: a message's
// fragments, its end-to-end acknowledgement, and the acks of each hop.
func routed(nw *sim.Network) uint64 {
	return nw.ByFirstByte[wire.TypeRoute].Load() + nw.ByFirstByte[wire.TypeHopAck].Load()
}

// sentByFirstByte returns the datagrams sent so far by their first byte
// (the overlay's frame type).
func sentByFirstByte(nw *sim.Network) (n [256]uint64) {
	for i := range n {
		n[i] = nw.ByFirstByte[i].Load()
	}
	return n
}

// logIdleByType logs the datagrams sent between the counts before and
// after by their first byte, per node per second (nodeSecs).
func logIdleByType(t *testing.T, before, after [256]uint64, nodeSecs float64) {
	var parts []string
	for i := range before {
		if d := after[i] - before[i]; d > 0 {
			parts = append(parts, fmt.Sprintf("0x%02X %.3f", i, float64(d)/nodeSecs))
		}
	}
	t.Logf("idle datagrams per node per second by first byte: %s", strings.Join(parts, ", "))
}
