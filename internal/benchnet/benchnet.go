// Package benchnet holds what the bench commands share: building an
// in-process network of nodes, and the statistics they print.
package benchnet

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/p2psock/p2psock/p2psock"
)

// Build creates n nodes: node 0 starts a network, the others join through it,
// parallel at a time. Node i listens on an address of its own, 127.X.Y.Z
// (Linux routes all of 127.0.0.0/8 to loopback), so that the routing
// table's diversity limits treat the network as nodes spread over the
// Internet, and requires no identity work, so that a thousand nodes start
// without a thousand work proofs. setup may change a node's Config (its socket, say);
// beforeBind runs between NewNode and Bind (to start services on the node).
// Both may be nil. It returns the nodes and the time the whole network took.
func Build(n, parallel int, setup func(i int, cfg *p2psock.Config) error, beforeBind func(i int, nd *p2psock.Node) error) ([]*p2psock.Node, time.Duration, error) {
	nodes := make([]*p2psock.Node, n)
	start := time.Now()
	mk := func(i int, boot []string) error {
		cfg := p2psock.Config{ListenAddr: fmt.Sprintf("127.%d.%d.%d:0", (i+2)>>16&0xff, (i+2)>>8&0xff, (i+2)&0xff),
			Bootstrap: boot, JoinOnly: len(boot) > 0, Difficulty: -1}
		if setup != nil {
			if err := setup(i, &cfg); err != nil {
				return err
			}
		}
		nd, err := p2psock.NewNode(cfg)
		if err != nil {
			return err
		}
		nodes[i] = nd
		if beforeBind != nil {
			if err := beforeBind(i, nd); err != nil {
				return err
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return nd.Bind(ctx)
	}
	if err := mk(0, nil); err != nil {
		return nil, 0, err
	}
	entry := []string{nodes[0].UDPAddr().String()}
	sem := make(chan struct{}, max(parallel, 1))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	var joined atomic.Int64
	stop := Progress("network", n, func() int { return int(joined.Load()) + 1 })
	for i := 1; i < n; i++ {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := mk(i, entry); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("node %d: %w", i, err))
				mu.Unlock()
			}
			joined.Add(1)
		})
	}
	wg.Wait()
	stop()
	if err := errors.Join(errs...); err != nil {
		Close(nodes)
		return nil, 0, err
	}
	return nodes, time.Since(start), nil
}

// ProgressEvery is how often Progress prints.
const ProgressEvery = 10 * time.Second

// Progress prints a line on stderr every ProgressEvery saying how many of
// total (what done returns) are built, until the returned stop is called.
func Progress(what string, total int, done func() int) (stop func()) {
	start := time.Now()
	quit := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		tick := time.NewTicker(ProgressEvery)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
				fmt.Fprintf(os.Stderr, "%s: %s: %d/%d after %v\n", filepath.Base(os.Args[0]), what, done(), total, time.Since(start).Round(time.Second))
			}
		}
	}()
	return func() {
		close(quit)
		<-exited
	}
}

// Close closes every node that was created, all at once: closed one after
// another, the nodes still open would spend the time taking the others'
// leaves and refilling their tables from a shrinking network (at a
// thousand nodes, minutes). It prints a progress line every ProgressEvery.
func Close(nodes []*p2psock.Node) {
	var closed atomic.Int64
	start := time.Now()
	stop := Progress("closing", len(nodes), func() int { return int(closed.Load()) })
	defer func() {
		stop()
		if d := time.Since(start); d >= ProgressEvery {
			fmt.Fprintf(os.Stderr, "%s: closed %d nodes in %v\n", filepath.Base(os.Args[0]), len(nodes), d.Round(time.Second))
		}
	}()
	var wg sync.WaitGroup
	for _, nd := range nodes {
		if nd == nil {
			closed.Add(1)
			continue
		}
		wg.Go(func() {
			nd.Close()
			closed.Add(1)
		})
	}
	wg.Wait()
}

// Rand returns a uniform random int in [0, n).
func Rand(n int) int {
	var b [4]byte
	rand.Read(b[:])
	return int(uint32(b[0])<<24|uint32(b[1])<<16|uint32(b[2])<<8|uint32(b[3])) % n
}

// Percentile returns the p-th percentile of v (p = 100: the largest),
// rounded to round.
func Percentile(v []time.Duration, p int, round time.Duration) time.Duration {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)].Round(round)
}

// CPUTime is the CPU time the process has used so far, user and system.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru) // fails only for an invalid who
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
