// Command hostilebench builds overlay networks in which a share of the nodes
// are hostile (package internal/testnet/hostile: they acknowledge and drop
// the traffic they should forward, sign refusals of it, answer lookups only
// with each other, swallow messages to keys and withhold DHT records), each
// node on its own loopback address, and measures, side by side with the same
// network with no hostile node: SendTo by ID delivered, SendToKey delivered
// to the honest node closest to the key, lookups over disjoint paths finding
// that node, and dht.Get returning a value added by another honest node.
//
//	go run ./internal/cmd/hostilebench -n 60 -hostile 0.2 -sends 100
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/p2psock/p2psock/dht"
	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/internal/testnet/hostile"
	"github.com/p2psock/p2psock/internal/testnet/ovnet"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "hostilebench:", err)
		os.Exit(1)
	}
}

type config struct {
	n, sends, lookups, dhtOps, par, joinPar int
	timeout                                 time.Duration
}

type result struct {
	share   float64
	built   time.Duration
	r       hostile.Result
	dhtOK   int
	dhtN    int
	elapsed time.Duration
}

func run() error {
	var c config
	share := flag.Float64("hostile", 0.2, "share of hostile nodes, 0–1")
	flag.IntVar(&c.n, "n", 60, "number of nodes")
	flag.IntVar(&c.sends, "sends", 100, "SendTo by ID and as many SendToKey")
	flag.IntVar(&c.lookups, "lookups", 100, "lookups over disjoint paths")
	flag.IntVar(&c.dhtOps, "dht", 100, "dht.Add then dht.Get by another node (0: no DHT)")
	flag.IntVar(&c.par, "parallel", 4, "operations at once")
	flag.IntVar(&c.joinPar, "join-parallel", 8, "nodes joining at once")
	flag.DurationVar(&c.timeout, "timeout", 20*time.Second, "per operation")
	verbose := flag.Bool("v", false, "print the first failures")
	flag.Parse()

	var results []result
	for _, s := range []float64{0, *share} {
		r, err := measure(c, s, *verbose)
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	fmt.Printf("hostilebench: %d nodes on distinct loopback addresses, hostile behaviour %+v, GOMAXPROCS=%d, %s\n\n",
		c.n, hostile.All, runtime.GOMAXPROCS(0), runtime.Version())
	fmt.Printf("| metric |")
	for _, r := range results {
		fmt.Printf(" %.0f %% hostile (%d nodes) |", r.share*100, int(float64(c.n)*r.share+0.5))
	}
	fmt.Printf("\n|---|")
	for range results {
		fmt.Printf("---|")
	}
	fmt.Println()
	row := func(name string, f func(r result) string) {
		fmt.Printf("| %s |", name)
		for _, r := range results {
			fmt.Printf(" %s |", f(r))
		}
		fmt.Println()
	}
	pct := func(a, b int) string {
		if b == 0 {
			return "–"
		}
		return fmt.Sprintf("%d/%d (%.1f %%)", a, b, 100*float64(a)/float64(b))
	}
	row("network built and settled in", func(r result) string { return r.built.Round(time.Second).String() })
	row("SendTo by ID delivered", func(r result) string { return pct(r.r.SendToOK, r.r.SendTo) })
	row("SendToKey delivered to the closest honest node", func(r result) string { return pct(r.r.SendToKeyExact, r.r.SendToKey) })
	row("lookups (disjoint paths) finding the closest honest node", func(r result) string { return pct(r.r.LookupsClosest, r.r.Lookups) })
	if c.dhtOps > 0 {
		row("dht.Get returning the value another honest node added", func(r result) string { return pct(r.dhtOK, r.dhtN) })
	}
	row("measuring took", func(r result) string { return r.elapsed.Round(time.Second).String() })
	return nil
}

func measure(c config, share float64, verbose bool) (result, error) {
	res := result{share: share}
	t0 := time.Now()
	var mu sync.Mutex
	dhts := map[int]*dht.DHT{}
	attach := func(i int, nd *ovnet.Node) error {
		if c.dhtOps == 0 {
			return nil
		}
		d, err := dht.New(nd.Overlay, dht.Config{})
		if err != nil {
			return err
		}
		nd.Closers = append(nd.Closers, d.Close)
		mu.Lock()
		dhts[i] = d
		mu.Unlock()
		return nil
	}
	nw, err := hostile.Build(hostile.Options{N: c.n, Hostile: share, Behave: hostile.All, Parallel: c.joinPar, Attach: attach})
	if err != nil {
		return res, err
	}
	defer nw.Close()
	ctx := context.Background()
	nw.Settle(ctx)
	res.built = time.Since(t0)

	t1 := time.Now()
	res.r = nw.Measure(ctx, hostile.Plan{SendTo: c.sends, SendToKey: c.sends, Lookups: c.lookups, Timeout: c.timeout, Parallel: c.par})
	if verbose {
		for _, f := range res.r.Failures {
			fmt.Fprintf(os.Stderr, "%.0f %% hostile: %s\n", share*100, f)
		}
	}
	if c.dhtOps > 0 {
		var honest []int
		for i := range nw.Nodes {
			if !nw.Hostile[i] {
				honest = append(honest, i)
			}
		}
		var wg sync.WaitGroup
		sem := make(chan struct{}, c.par)
		for k := range c.dhtOps {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				w, r := honest[testnet.Intn(len(honest))], honest[testnet.Intn(len(honest))]
				for r == w && len(honest) > 1 {
					r = honest[testnet.Intn(len(honest))]
				}
				key := fmt.Sprintf("hostilebench-%d-%d", k, testnet.Intn(1<<30))
				actx, cancel := context.WithTimeout(ctx, c.timeout)
				defer cancel()
				ok := false
				if err := dhts[w].Add(actx, key, []byte(key), 0); err == nil {
					rs, _ := dhts[r].Get(actx, key) // an error is a miss
					for _, rec := range rs {
						ok = ok || string(rec.Value) == key && rec.Owner == nw.Nodes[w].ID()
					}
				} else if verbose {
					fmt.Fprintf(os.Stderr, "%.0f %% hostile: dht add %s: %v\n", share*100, key, err)
				}
				mu.Lock()
				res.dhtN++
				if ok {
					res.dhtOK++
				}
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	res.elapsed = time.Since(t1)
	return res, nil
}
