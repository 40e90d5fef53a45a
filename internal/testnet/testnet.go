// Package testnet is the one test harness of p2psock: in-process networks of
// nodes on loopback, built the same way whatever the node type (a
// *p2psock.Node, an overlay with its socket, ...), and the one goroutine-leak
// check every test that starts nodes calls first. Simulated NATs come from
// package internal/simnet, whose hosts give the nodes their sockets.
//
// A test starts with
//
//	testnet.CheckLeaks(t)
//	tn := testnet.Start(t, 40, func(i int, entries []string) (*p2psock.Node, error) { ... }, addrOf)
//
// and the harness closes the nodes at cleanup, before the leak check runs.
//
// It imports nothing of p2psock, so every package's tests, internal or
// external, can use it.
package testnet

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// CheckLeaks records the number of goroutines now and, at the end of the
// test (after every cleanup registered later, so after the test's nodes have
// closed), fails the test with every goroutine's stack if more are left than
// there were, once a grace period of 10 s has passed. Call it first.
func CheckLeaks(t testing.TB) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		if t.Failed() {
			return // the failure is what matters; nodes may not have closed
		}
		deadline := time.Now().Add(10 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 4<<20)
				t.Errorf("%d goroutines left behind (%d before the test):\n%s",
					runtime.NumGoroutine()-before, before, buf[:runtime.Stack(buf, true)])
				return
			}
			// There is no event for "a goroutine exited": poll the count.
			runtime.Gosched()
			time.Sleep(5 * time.Millisecond)
		}
	})
}

// Logger returns a logger that writes debug logs to the test log when the
// environment variable P2PSOCK_TEST_DEBUG is set, and nil otherwise (the
// components' default: no logging).
func Logger(t testing.TB) *slog.Logger {
	if os.Getenv("P2PSOCK_TEST_DEBUG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(writer{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type writer struct{ t testing.TB }

func (w writer) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// Difficulty is the identity work (overlay.Config.Difficulty,
// p2psock.Config.Difficulty) that the harness's nodes require when their
// configuration leaves it 0: none, so that tests start hundreds of nodes,
// some with keys of their own, at once. Tests of the work proof, and one
// test of the default, set it themselves.
const Difficulty = -1

// LoopbackAddr is the listen address of node i of a loopback network: an
// address of its own (DistinctLoopbackAddr), so that the routing table's
// diversity limits (at most a few contacts per address) treat a test
// network as they treat nodes spread over the Internet.
func LoopbackAddr(i int) string { return DistinctLoopbackAddr(i) }

// DistinctLoopbackAddr is a listen address of its own for node i: port 0 on
// 127.0.0.(i+2) (Linux routes all of 127.0.0.0/8 to the loopback interface).
func DistinctLoopbackAddr(i int) string {
	return fmt.Sprintf("127.%d.%d.%d:0", (i+2)>>16&0xff, (i+2)>>8&0xff, (i+2)&0xff)
}

// Intn returns a uniformly random int in [0, n), for tests that pick random
// senders and keys (crypto/rand: no seed to share between tests).
func Intn(n int) int {
	var b [8]byte
	rand.Read(b[:])
	return int(binary.BigEndian.Uint64(b[:]) % uint64(n))
}

// Node is what the harness starts and stops.
type Node interface {
	Close() error
}

// Net is a network of nodes of type N. Nodes is in the order they were
// added; the methods are for the test goroutine.
type Net[N Node] struct {
	t     testing.TB
	start func(i int, entries []string) (N, error)
	addr  func(N) string

	mu    sync.Mutex
	Nodes []N
}

// Start builds a network of n nodes, one after another: start(i, entries)
// opens node i and binds it into the network through entries (the address of
// a random node already in it, none for the first) and returns once the
// node is bound; addr gives a node's address for others' entries. The nodes
// are closed at the end of the test.
func Start[N Node](t testing.TB, n int, start func(i int, entries []string) (N, error), addr func(N) string) *Net[N] {
	t.Helper()
	tn := &Net[N]{t: t, start: start, addr: addr}
	t.Cleanup(tn.Close)
	for range n {
		tn.Add()
	}
	return tn
}

// Add starts one more node through a random node of the network and returns
// it; a failure fails the test.
func (tn *Net[N]) Add() N {
	tn.t.Helper()
	tn.mu.Lock()
	i := len(tn.Nodes)
	var entries []string
	if i > 0 {
		entries = []string{tn.addr(tn.Nodes[Intn(i)])}
	}
	tn.mu.Unlock()
	nd, err := tn.start(i, entries)
	if err != nil {
		tn.t.Fatalf("starting node %d: %v", i, err)
	}
	tn.mu.Lock()
	tn.Nodes = append(tn.Nodes, nd)
	tn.mu.Unlock()
	return nd
}

// AddConcurrently starts k more nodes at once, all through the first node,
// and returns them once every one is bound. Errors are collected from the
// goroutines and fail the test from the test goroutine.
func (tn *Net[N]) AddConcurrently(k int) []N {
	tn.t.Helper()
	tn.mu.Lock()
	base := len(tn.Nodes)
	entries := []string{tn.addr(tn.Nodes[0])}
	tn.mu.Unlock()
	out := make([]N, k)
	errs := make([]error, k)
	var wg sync.WaitGroup
	for j := range k {
		wg.Go(func() { out[j], errs[j] = tn.start(base+j, entries) })
	}
	wg.Wait()
	var failed []string
	for j, err := range errs {
		if err != nil {
			failed = append(failed, fmt.Sprintf("node %d: %v", base+j, err))
			continue
		}
		tn.mu.Lock()
		tn.Nodes = append(tn.Nodes, out[j])
		tn.mu.Unlock()
	}
	if len(failed) > 0 {
		tn.t.Fatalf("starting nodes concurrently: %s", strings.Join(failed, "; "))
	}
	return out
}

// Close closes every node, in parallel; it runs at the end of the test.
func (tn *Net[N]) Close() {
	tn.mu.Lock()
	nodes := tn.Nodes
	tn.mu.Unlock()
	var wg sync.WaitGroup
	for _, nd := range nodes {
		wg.Go(func() { nd.Close() })
	}
	wg.Wait()
}

// Eventually waits until cond holds, checking it every 10 ms, and fails the
// test with what if it does not within d. For conditions no event announces
// (a routing table's contents, a counter on another node).
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
