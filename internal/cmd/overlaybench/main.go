// Command overlaybench builds a network of many nodes in one process, on
// real loopback UDP sockets or on the simulated network, and measures
// routing: hops per message, delivery latency, packets per message, memory
// and goroutines per node. A raw UDP round trip on loopback, measured in the
// same run, is the baseline.
//
//	go run ./internal/cmd/overlaybench -n 1000 -sends 2000
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
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
	flag.Parse()

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
	nodes, built, err := benchnet.Build(*n, *joinPar, setup, nil)
	if err != nil {
		return err
	}
	defer benchnet.Close(nodes)

	runtime.GC()
	var ms1 runtime.MemStats
	runtime.ReadMemStats(&ms1)
	g1 := runtime.NumGoroutine()
	perNodeMem := (float64(ms1.HeapInuse+ms1.StackInuse) - float64(ms0.HeapInuse+ms0.StackInuse)) / float64(*n)
	perNodeG := float64(g1-g0) / float64(*n)
	contacts := 0
	for _, nd := range nodes {
		contacts += nd.Info().Contacts
	}

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
	fmt.Printf("| delivered to the XOR-closest node | %d/%d (%d failed) |\n", exact, *sends, failed)
	fmt.Printf("| hops per message, median / p99 / max | %d / %d / %d |\n", pct(hops, 50), pct(hops, 99), pct(hops, 100))
	fmt.Printf("| one-way delivery latency, median / p99 | %v / %v |\n", benchnet.Percentile(oneWay, 50, time.Microsecond), benchnet.Percentile(oneWay, 99, time.Microsecond))
	fmt.Printf("| SendToKey until acknowledged, median / p99 | %v / %v |\n", benchnet.Percentile(ackLat, 50, time.Microsecond), benchnet.Percentile(ackLat, 99, time.Microsecond))
	fmt.Printf("| baseline: raw UDP round trip on loopback, median / p99 | %v / %v |\n", benchnet.Percentile(rawRTT, 50, time.Microsecond), benchnet.Percentile(rawRTT, 99, time.Microsecond))
	fmt.Printf("| packets sent per message (route frames, hop acks, end-to-end ack) | %.1f |\n", perMsgPkts)
	fmt.Printf("| memory per idle node (heap + stacks in use) | %.0f KiB |\n", perNodeMem/1024)
	fmt.Printf("| goroutines per idle node | %.1f |\n", perNodeG)
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
