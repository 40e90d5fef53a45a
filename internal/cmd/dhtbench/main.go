// Command dhtbench builds a network of nodes running the DHT, on real
// loopback UDP sockets, and measures Add and Get: latency, success, and the
// records still readable after a quarter of the nodes fail.
//
//	go run ./internal/cmd/dhtbench -n 50 -ops 500
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
	"github.com/p2psock/p2psock/internal/benchnet"
	"github.com/p2psock/p2psock/p2psock"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "dhtbench:", err)
		os.Exit(1)
	}
}

func run() error {
	n := flag.Int("n", 50, "number of nodes")
	ops := flag.Int("ops", 500, "Add operations (then as many Gets)")
	size := flag.Int("size", 100, "value size in bytes")
	joinPar := flag.Int("join-parallel", 8, "nodes joining at once")
	fail := flag.Float64("fail", 0.25, "share of nodes closed before the final read")
	flag.Parse()

	dhts := make([]*dht.DHT, *n)
	nodes, built, err := benchnet.Build(*n, *joinPar, nil, func(i int, nd *p2psock.Node) error {
		var err error
		dhts[i], err = dht.New(nd, dht.Config{})
		return err
	})
	if err != nil {
		return err
	}
	defer func() {
		var wg sync.WaitGroup
		for _, d := range dhts {
			wg.Go(func() { d.Close() })
		}
		wg.Wait()
		benchnet.Close(nodes)
	}()

	value := make([]byte, *size)
	type stored struct {
		key   string
		owner int
	}
	var recs []stored
	var addLat, getLat []time.Duration
	addOK, getOK := 0, 0
	for i := range *ops {
		key := fmt.Sprintf("key-%d-%d", i, benchnet.Rand(1<<30))
		owner := 1 + benchnet.Rand(max(1, *n/5)) // owners: a fifth of the nodes, so the rest can fail
		copy(value, key)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		t0 := time.Now()
		err := dhts[owner].Add(ctx, key, value, 0)
		addLat = append(addLat, time.Since(t0))
		cancel()
		if err == nil {
			addOK++
			recs = append(recs, stored{key, owner})
		}
	}
	for _, r := range recs {
		reader := benchnet.Rand(*n)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		t0 := time.Now()
		rs, err := dhts[reader].Get(ctx, r.key)
		getLat = append(getLat, time.Since(t0))
		cancel()
		if err == nil && len(rs) == 1 && rs[0].Owner == nodes[r.owner].ID() {
			getOK++
		}
	}

	// Fail a share of the nodes (never an owner: owners would republish),
	// then read every record again from a live node.
	owners := map[int]bool{}
	for _, r := range recs {
		owners[r.owner] = true
	}
	down := map[int]bool{}
	for _, i := range perm(*n) {
		if len(down) >= int(float64(*n)**fail) {
			break
		}
		if i != 0 && !owners[i] {
			down[i] = true
			dhts[i].Close()
			nodes[i].Close()
		}
	}
	kept := 0
	for _, r := range recs {
		reader := benchnet.Rand(*n)
		for down[reader] {
			reader = benchnet.Rand(*n)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		rs, err := dhts[reader].Get(ctx, r.key)
		cancel()
		if err == nil && len(rs) == 1 {
			kept++
		}
	}

	fmt.Printf("dhtbench: %d nodes on loopback, %d Adds of %d-byte values then as many Gets, replicas 6, GOMAXPROCS=%d, %s\n\n",
		*n, *ops, *size, runtime.GOMAXPROCS(0), runtime.Version())
	fmt.Printf("owners: %d nodes; reader of each Get: a random node\n\n", max(1, *n/5))
	fmt.Printf("| metric | value |\n|---|---|\n")
	fmt.Printf("| network built in | %v |\n", built.Round(time.Millisecond))
	fmt.Printf("| Add: success | %d/%d |\n", addOK, *ops)
	fmt.Printf("| Add latency, median / p95 | %v / %v |\n", benchnet.Percentile(addLat, 50, 10*time.Microsecond), benchnet.Percentile(addLat, 95, 10*time.Microsecond))
	fmt.Printf("| Get: success (the one value, right owner) | %d/%d |\n", getOK, len(recs))
	fmt.Printf("| Get latency, median / p95 | %v / %v |\n", benchnet.Percentile(getLat, 50, 10*time.Microsecond), benchnet.Percentile(getLat, 95, 10*time.Microsecond))
	fmt.Printf("| records readable after %d of %d nodes (%.0f%%) closed, owners kept | %d/%d |\n", len(down), *n, *fail*100, kept, len(recs))
	return nil
}

func perm(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	for i := n - 1; i > 0; i-- {
		j := benchnet.Rand(i + 1)
		p[i], p[j] = p[j], p[i]
	}
	return p
}
