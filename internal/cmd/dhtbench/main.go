// Command dhtbench builds a network of nodes running the DHT, on real
// loopback UDP sockets, and measures Add and Get: latency, success, and the
// records still readable after a quarter of the nodes fail.
//
//	go run ./internal/cmd/dhtbench -n 50 -ops 500
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/p2psock/p2psock"
	"github.com/p2psock/p2psock/dht"
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

	nodes := make([]*p2psock.Node, *n)
	dhts := make([]*dht.DHT, *n)
	start := time.Now()
	mk := func(i int, boot []string) error {
		nd, err := p2psock.NewNode(p2psock.Config{ListenAddr: "127.0.0.1:0", Bootstrap: boot, JoinOnly: len(boot) > 0})
		if err != nil {
			return err
		}
		d, err := dht.New(nd, dht.Config{})
		if err != nil {
			return err
		}
		nodes[i], dhts[i] = nd, d
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return nd.Bind(ctx)
	}
	if err := mk(0, nil); err != nil {
		return err
	}
	entry := []string{nodes[0].UDPAddr().String()}
	sem := make(chan struct{}, *joinPar)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for i := 1; i < *n; i++ {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := mk(i, entry); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	built := time.Since(start)
	defer func() {
		for i := range nodes {
			if dhts[i] != nil {
				dhts[i].Close()
				nodes[i].Close()
			}
		}
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
		key := fmt.Sprintf("key-%d-%x", i, randBytes(4))
		owner := 1 + mrand(max(1, *n/5)) // owners: a fifth of the nodes, so the rest can fail
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
		reader := mrand(*n)
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
		reader := mrand(*n)
		for down[reader] {
			reader = mrand(*n)
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
	fmt.Printf("| Add latency, median / p95 | %v / %v |\n", pctD(addLat, 50), pctD(addLat, 95))
	fmt.Printf("| Get: success (the one value, right owner) | %d/%d |\n", getOK, len(recs))
	fmt.Printf("| Get latency, median / p95 | %v / %v |\n", pctD(getLat, 50), pctD(getLat, 95))
	fmt.Printf("| records readable after %d of %d nodes (%.0f%%) closed, owners kept | %d/%d |\n", len(down), *n, *fail*100, kept, len(recs))
	return nil
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func mrand(n int) int {
	b := randBytes(4)
	return int(uint32(b[0])<<24|uint32(b[1])<<16|uint32(b[2])<<8|uint32(b[3])) % n
}

func perm(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	for i := n - 1; i > 0; i-- {
		j := mrand(i + 1)
		p[i], p[j] = p[j], p[i]
	}
	return p
}

func pctD(v []time.Duration, p int) time.Duration {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)].Round(10 * time.Microsecond)
}
