// Command overlaybench builds a network of many nodes in one process, on
// real loopback UDP sockets or on the simulated network, and measures
// routing: hops per message, delivery latency, packets per message, memory
// and goroutines per node. A raw UDP round trip on loopback, measured in the
// same run, is the baseline. With -clients K, K light clients
// (p2psock.Config.Client) join the built network, each through a random full
// node: their memory and goroutines are measured against the full nodes', and
// the messages to keys are sent among them (only full nodes can take one).
// With -churn M, M extra nodes come and go (each lives -churn-min to
// -churn-max, a share crashes without leaving) while the full nodes send to
// random keys: a phase without churn (the baseline), one with the churners
// as light clients and one with them as full members, side by side. With
// -idle D, the built network idles for -windows windows of D: the CPU, bytes
// and packets each node costs per second while nothing is sent, beside N bare
// UDP sockets measured in the same run.
//
//	go run ./internal/cmd/overlaybench -n 1000 -sends 2000
//	go run ./internal/cmd/overlaybench -n 200 -clients 200 -sends 500
//	go run ./internal/cmd/overlaybench -n 200 -churn 100 -churn-for 60s
//	go run ./internal/cmd/overlaybench -n 1000 -sends 300 -memprofile heap.pb.gz -goroutines g.pb.gz
//	go run ./internal/cmd/overlaybench -n 1000 -idle 100s -windows 4
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"time"

	"github.com/p2psock/p2psock/internal/benchnet"
	"github.com/p2psock/p2psock/internal/simnet"
	"github.com/p2psock/p2psock/p2psock"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "overlaybench:", err)
		os.Exit(1)
	}
}

type delivery struct {
	at   p2psock.ID
	msg  p2psock.Message
	when time.Time
}

func run() error {
	n := flag.Int("n", 1000, "number of nodes")
	sends := flag.Int("sends", 2000, "SendToKey messages to measure")
	size := flag.Int("size", 100, "message size in bytes")
	joinPar := flag.Int("join-parallel", 8, "nodes joining at once")
	network := flag.String("net", "loopback", "loopback (real UDP sockets on 127.0.0.1) or vnet (simulated network)")
	natShare := flag.Float64("nat", 0, "with -net vnet: share of nodes behind NATs (full-cone, port-restricted, symmetric in turn)")
	nClients := flag.Int("clients", 0, "with -net loopback: light clients that join the built network")
	churn := flag.Int("churn", 0, "with -net loopback: extra nodes alive at once that come and go while the full nodes send to keys (replaces the plain measurement)")
	churnAs := flag.String("churn-as", "both", "with -churn: the churners join as client (light clients), full (full members) or both (one phase each)")
	churnMin := flag.Duration("churn-min", 2*time.Second, "with -churn: the shortest life of a churner")
	churnMax := flag.Duration("churn-max", 8*time.Second, "with -churn: the longest life of a churner (lives are uniform in between)")
	churnCrash := flag.Float64("churn-crash", 0.5, "with -churn: share of the churners that end without leaving (their socket goes silent first)")
	churnFor := flag.Duration("churn-for", time.Minute, "with -churn: measured time of each phase, the baseline included")
	churnRate := flag.Float64("churn-rate", 25, "with -churn: SendToKey per second among the full nodes during each phase")
	memProfile := flag.String("memprofile", "", "write a heap profile (in use, after GC) of the idle network to this file")
	goroutineProfile := flag.String("goroutines", "", "write a goroutine profile (pprof format; debug=1 text beside it as FILE.txt) of the idle network to this file")
	idle := flag.Duration("idle", 0, "measure the built network idle (nothing sent) for -windows windows of this length, beside bare UDP sockets (replaces the plain measurement)")
	windows := flag.Int("windows", 4, "with -idle: number of windows")
	cpuProfile := flag.String("cpuprofile", "", "with -idle: write a CPU profile of the idle windows to this file")
	buildProfile := flag.String("buildprofile", "", "write a CPU profile of the network's build (the joins) to this file")
	flag.Parse()
	if *memProfile != "" {
		// Sample every 4 KiB allocated, not every 512 KiB: a node's
		// structures are a few KiB each.
		runtime.MemProfileRate = 4096
	}

	if *churn > 0 && (*network != "loopback" || *churnMin <= 0 || *churnMax < *churnMin || *churnRate <= 0) {
		return fmt.Errorf("-churn needs -net loopback, 0 < -churn-min <= -churn-max and -churn-rate > 0")
	}
	var sn *simnet.Network
	if *network == "vnet" {
		var err error
		if sn, err = simnet.New(); err != nil {
			return err
		}
		defer sn.Close()
	} else if *network != "loopback" {
		return fmt.Errorf("unknown -net %q", *network)
	}

	var bare, bareLen time.Duration
	if *idle > 0 {
		if *network != "loopback" || *windows <= 0 {
			return fmt.Errorf("-idle needs -net loopback and -windows > 0")
		}
		bareLen = min(*idle, 30*time.Second)
		var err error
		if bare, err = bareUDPIdle(*n, bareLen); err != nil {
			return err
		}
	}

	runtime.GC()
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	g0 := runtime.NumGoroutine()

	var setup func(int, *p2psock.Config) error
	if sn != nil {
		setup = func(i int, cfg *p2psock.Config) error {
			kind := simnet.Public
			if i > 0 && float64(i%100) < *natShare*100 {
				kind = []simnet.Kind{simnet.FullCone, simnet.PortRestricted, simnet.Symmetric}[i%3]
			}
			h, err := sn.AddHost(kind)
			if err != nil {
				return err
			}
			cfg.PacketConn, err = h.ListenUDP(4000)
			return err
		}
	}
	stop, err := cpuProfileTo(*buildProfile)
	if err != nil {
		return err
	}
	nodes, built, err := benchnet.Build(*n, *joinPar, setup, nil)
	stop()
	if err != nil {
		return err
	}
	defer benchnet.Close(nodes)
	if *churn > 0 {
		plan := churnPlan{alive: *churn, minLife: *churnMin, maxLife: *churnMax, crash: *churnCrash}
		return runChurn(nodes, built, *joinPar, plan, *churnAs, *churnRate, *churnFor, *size)
	}
	if *idle > 0 {
		stop, err := cpuProfileTo(*cpuProfile)
		if err != nil {
			return err
		}
		ws := measureIdle(nodes, *idle, *windows)
		stop()
		fmt.Printf("overlaybench: %d nodes on %s, built in %v, GOMAXPROCS=%d, %s\n", *n, *network, built.Round(time.Millisecond), runtime.GOMAXPROCS(0), runtime.Version())
		printIdle(*n, *idle, bare, bareLen, ws)
		return nil
	}

	runtime.GC()
	var ms1 runtime.MemStats
	runtime.ReadMemStats(&ms1)
	g1 := runtime.NumGoroutine()
	perNodeMem := (float64(ms1.HeapInuse+ms1.StackInuse) - float64(ms0.HeapInuse+ms0.StackInuse)) / float64(*n)
	perNodeG := float64(g1-g0) / float64(*n)
	perNodeStack := (float64(ms1.StackInuse) - float64(ms0.StackInuse)) / float64(*n)
	perNodeObjs := (float64(ms1.HeapAlloc) - float64(ms0.HeapAlloc)) / float64(*n)
	if err := writeProfiles(*memProfile, *goroutineProfile); err != nil {
		return err
	}
	contacts := 0
	var dropped overlayDrops
	for _, nd := range nodes {
		contacts += nd.Info().Contacts
		dropped.add(nd.Info().Counters)
	}
	clients, cl, err := addClients(nodes, *nClients, *joinPar)
	if err != nil {
		return err
	}
	defer benchnet.Close(clients)

	// Receivers.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan delivery, 1024)
	var rwg sync.WaitGroup
	for _, nd := range nodes {
		rwg.Go(func() {
			for {
				m, err := nd.RecvFrom(ctx)
				if err != nil {
					return
				}
				got <- delivery{at: nd.ID(), msg: m, when: time.Now()}
			}
		})
	}
	defer rwg.Wait()
	defer cancel()

	pktsOut := func() uint64 {
		var s uint64
		for _, nd := range nodes {
			s += nd.Info().Counters.PacketsOut
		}
		return s
	}
	out0 := pktsOut()
	var hops []int
	var ackLat, oneWay []time.Duration
	exact, failed := 0, 0
	data := make([]byte, *size)
	for i := range *sends {
		var key p2psock.Key
		rand.Read(key[:])
		from := nodes[benchnet.Rand(len(nodes))]
		copy(data, fmt.Sprintf("%08d", i))
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		t0 := time.Now()
		err := from.SendToKey(sctx, data, key)
		lat := time.Since(t0)
		scancel()
		if err != nil {
			failed++
			continue
		}
		ackLat = append(ackLat, lat)
		for d := range got {
			if string(d.msg.Data[:8]) != fmt.Sprintf("%08d", i) {
				continue
			}
			hops = append(hops, d.msg.Hops)
			oneWay = append(oneWay, d.when.Sub(t0))
			if d.at == closest(nodes, key) {
				exact++
			}
			break
		}
	}
	perMsgPkts := float64(pktsOut()-out0) / float64(*sends)
	rawRTT := rawUDPRoundTrips(2000)

	fmt.Printf("overlaybench: %d nodes on %s", *n, *network)
	if sn != nil {
		fmt.Printf(" (%.0f%% behind NATs)", *natShare*100)
	}
	fmt.Printf(", %d SendToKey of %d bytes, GOMAXPROCS=%d, %s\n\n", *sends, *size, runtime.GOMAXPROCS(0), runtime.Version())
	fmt.Printf("| metric | value |\n|---|---|\n")
	fmt.Printf("| network built in | %v (%d joining at once) |\n", built.Round(time.Millisecond), *joinPar)
	fmt.Printf("| routing table size, mean | %.1f contacts |\n", float64(contacts)/float64(*n))
	fmt.Printf("| contacts dropped while building, per node: silent / unacked / left; refresh lookups | %s |\n", dropped.String(*n))
	fmt.Printf("| delivered to the XOR-closest node | %d/%d (%d failed) |\n", exact, *sends, failed)
	fmt.Printf("| hops per message, median / p99 / max | %d / %d / %d |\n", pct(hops, 50), pct(hops, 99), pct(hops, 100))
	fmt.Printf("| one-way delivery latency, median / p99 | %v / %v |\n", benchnet.Percentile(oneWay, 50, time.Microsecond), benchnet.Percentile(oneWay, 99, time.Microsecond))
	fmt.Printf("| SendToKey until acknowledged, median / p99 | %v / %v |\n", benchnet.Percentile(ackLat, 50, time.Microsecond), benchnet.Percentile(ackLat, 99, time.Microsecond))
	fmt.Printf("| baseline: raw UDP round trip on loopback, median / p99 | %v / %v |\n", benchnet.Percentile(rawRTT, 50, time.Microsecond), benchnet.Percentile(rawRTT, 99, time.Microsecond))
	fmt.Printf("| packets sent per message (route frames, hop acks, end-to-end ack) | %.1f |\n", perMsgPkts)
	fmt.Printf("| memory per idle node (heap + stacks in use) | %.0f KiB |\n", perNodeMem/1024)
	fmt.Printf("| of which live heap objects | %.1f KiB |\n", perNodeObjs/1024)
	fmt.Printf("| of which goroutine stacks | %.1f KiB |\n", perNodeStack/1024)
	fmt.Printf("| goroutines per idle node | %.1f |\n", perNodeG)
	if len(clients) > 0 {
		fmt.Printf("| light clients joined in | %v (%d joining at once) |\n", cl.built.Round(time.Millisecond), *joinPar)
		fmt.Printf("| memory per idle light client (heap + stacks in use, its proxies' entries included) | %.0f KiB |\n", cl.mem/1024)
		fmt.Printf("| goroutines per idle light client | %.1f |\n", cl.goroutines)
		fmt.Printf("| light client's contacts (proxies), mean | %.1f |\n", cl.contacts)
		fmt.Printf("| light clients in a full node's routing table | %d |\n", cl.inTables)
		fmt.Printf("| light clients attached per full node, mean | %.1f |\n", cl.attached)
		fmt.Printf("| messages to keys sent by light clients, delivered to the XOR-closest full node | %d/%d |\n", cl.exact, cl.sends)
	}
	return nil
}

// overlayDrops sums the routing tables' losses and refreshes over nodes.
type overlayDrops struct{ silent, unacked, left, refreshes uint64 }

func (d *overlayDrops) add(c p2psock.Counters) {
	d.silent += c.ContactsSilent
	d.unacked += c.ContactsUnacked
	d.left += c.ContactsLeft
	d.refreshes += c.RefreshLookups
}

func (d overlayDrops) String(n int) string {
	f := func(v uint64) float64 { return float64(v) / float64(n) }
	return fmt.Sprintf("%.1f / %.1f / %.1f; %.1f", f(d.silent), f(d.unacked), f(d.left), f(d.refreshes))
}

// clientStats are the figures of the light clients of a run.
type clientStats struct {
	built           time.Duration
	mem, goroutines float64 // per client, once idle
	contacts        float64 // per client
	attached        float64 // per full node
	inTables        int     // clients found in the full nodes' routing tables
	exact, sends    int     // SendToKey from clients, delivered to the closest full node
}

// addClients joins k light clients to the network of full nodes, parallel at
// a time, each through a random full node, and measures them.
func addClients(full []*p2psock.Node, k, parallel int) ([]*p2psock.Node, clientStats, error) {
	var st clientStats
	if k == 0 {
		return nil, st, nil
	}
	runtime.GC()
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	g0 := runtime.NumGoroutine()
	start := time.Now()
	clients := make([]*p2psock.Node, k)
	sem := make(chan struct{}, max(parallel, 1))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for j := range k {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			i := len(full) + j
			nd, err := p2psock.NewNode(p2psock.Config{ListenAddr: fmt.Sprintf("127.%d.%d.%d:0", (i+2)>>16&0xff, (i+2)>>8&0xff, (i+2)&0xff),
				Bootstrap: []string{full[benchnet.Rand(len(full))].UDPAddr().String()}, Client: true, Difficulty: -1})
			if err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				err = nd.Bind(ctx)
				cancel()
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("client %d: %w", j, err))
			}
			clients[j] = nd
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		benchnet.Close(clients)
		return nil, st, errs[0]
	}
	st.built = time.Since(start)
	// Idle: a client lets the contacts of its lookups go after KeepAlive
	// (15 s), and the full nodes forget the clients they only met in
	// lookups 3·KeepAlive (45 s) after: wait for that, 80 s at most.
	for wait := time.Now(); time.Since(wait) < 80*time.Second; time.Sleep(time.Second) {
		contacts, attached := 0, 0
		for _, c := range clients {
			contacts += c.Info().Contacts
		}
		for _, f := range full {
			attached += f.Info().Clients
		}
		if contacts <= 3*k && attached <= 3*k {
			break
		}
	}
	runtime.GC()
	var ms1 runtime.MemStats
	runtime.ReadMemStats(&ms1)
	st.mem = (float64(ms1.HeapInuse+ms1.StackInuse) - float64(ms0.HeapInuse+ms0.StackInuse)) / float64(k)
	st.goroutines = float64(runtime.NumGoroutine()-g0) / float64(k)
	ids := map[p2psock.ID]bool{}
	for _, c := range clients {
		ids[c.ID()] = true
		st.contacts += float64(c.Info().Contacts) / float64(k)
	}
	for _, f := range full {
		st.attached += float64(f.Info().Clients) / float64(len(full))
		for _, id := range f.Contacts() {
			if ids[id] {
				st.inTables++
			}
		}
	}
	// Messages to keys from the clients: each must reach the full node
	// closest to its key (the receivers read them later: they queue).
	got := map[p2psock.ID]int{}
	for _, f := range full {
		got[f.ID()] = int(f.Info().Counters.MessagesReceived)
	}
	want := map[p2psock.ID]int{}
	for i := range min(k, 200) {
		var key p2psock.Key
		rand.Read(key[:])
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := clients[i].SendToKey(ctx, []byte("from a client"), key)
		cancel()
		st.sends++
		if err == nil {
			want[closest(full, key)]++
		}
	}
	for _, f := range full {
		if d := int(f.Info().Counters.MessagesReceived) - got[f.ID()]; d > 0 {
			st.exact += min(d, want[f.ID()])
		}
	}
	return clients, st, nil
}

// writeProfiles writes the heap profile (after a GC, so in-use figures are
// those of live objects) and the goroutine profile, each when its file is
// named. The goroutine profile also goes to file.txt in pprof's debug=1
// text, which groups identical stacks with their count.
func writeProfiles(heapFile, goroutineFile string) error {
	write := func(name, file string, debug int) error {
		f, err := os.Create(file)
		if err != nil {
			return err
		}
		if err := pprof.Lookup(name).WriteTo(f, debug); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	if heapFile != "" {
		runtime.GC()
		if err := write("heap", heapFile, 0); err != nil {
			return err
		}
	}
	if goroutineFile != "" {
		if err := write("goroutine", goroutineFile, 0); err != nil {
			return err
		}
		if err := write("goroutine", goroutineFile+".txt", 1); err != nil {
			return err
		}
	}
	return nil
}

func closest(nodes []*p2psock.Node, key p2psock.Key) p2psock.ID {
	best := nodes[0].ID()
	for _, nd := range nodes[1:] {
		if key.Closer(nd.ID().Key(), best.Key()) {
			best = nd.ID()
		}
	}
	return best
}

// rawUDPRoundTrips measures n ping-pongs between two plain UDP sockets.
func rawUDPRoundTrips(n int) []time.Duration {
	a, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil
	}
	defer a.Close()
	b, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil
	}
	defer b.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			k, from, err := b.ReadFrom(buf)
			if err != nil {
				return
			}
			if _, err := b.WriteTo(buf[:k], from); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 1500)
	msg := make([]byte, 100)
	var out []time.Duration
	for range n {
		t0 := time.Now()
		if _, err := a.WriteTo(msg, b.LocalAddr()); err != nil {
			continue
		}
		a.SetReadDeadline(time.Now().Add(time.Second))
		if _, _, err := a.ReadFrom(buf); err != nil {
			continue
		}
		out = append(out, time.Since(t0))
	}
	return out
}

func pct(v []int, p int) int {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

// cpuProfileTo starts a CPU profile written to path, and returns what stops
// it and closes the file; with an empty path, nothing is profiled.
func cpuProfileTo(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
