package p2psock

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testNet is an in-process network of nodes on 127.0.0.1 whose received
// messages are collected on one channel.
type testNet struct {
	t     testing.TB
	nodes []*Node
	got   chan received
	wg    sync.WaitGroup
	stop  context.CancelFunc
	ctx   context.Context
}

type received struct {
	at  ID
	msg Message
}

func newLoopbackNet(t testing.TB, n int, cfg Config) *testNet {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tn := &testNet{t: t, got: make(chan received, 4096), ctx: ctx, stop: cancel}
	t.Cleanup(tn.close)
	for i := range n {
		c := cfg
		c.ListenAddr = "127.0.0.1:0"
		if i > 0 {
			c.Bootstrap = []string{tn.nodes[mrand(i)].UDPAddr().String()}
			c.JoinOnly = true
		}
		tn.add(c)
	}
	return tn
}

func mrand(n int) int {
	var b [2]byte
	rand.Read(b[:])
	return (int(b[0])<<8 | int(b[1])) % n
}

func (tn *testNet) add(cfg Config) *Node {
	t := tn.t
	t.Helper()
	nd, err := NewNode(cfg)
	require.NoError(t, err)
	bctx, cancel := context.WithTimeout(tn.ctx, 20*time.Second)
	defer cancel()
	require.NoError(t, nd.Bind(bctx))
	tn.nodes = append(tn.nodes, nd)
	tn.receive(nd)
	return nd
}

// receive collects nd's messages on tn.got until the network closes.
func (tn *testNet) receive(nd *Node) {
	tn.wg.Add(1)
	go func() {
		defer tn.wg.Done()
		for {
			m, err := nd.RecvFrom(tn.ctx)
			if err != nil {
				return
			}
			tn.got <- received{at: nd.ID(), msg: m}
		}
	}()
}

func (tn *testNet) close() {
	for _, n := range tn.nodes {
		n.Close()
	}
	tn.stop()
	tn.wg.Wait()
}

// closest returns the node among live closest to key.
func closestID(live []*Node, key Key) ID {
	best := live[0].ID()
	for _, n := range live[1:] {
		if key.Closer(n.ID().Key(), best.Key()) {
			best = n.ID()
		}
	}
	return best
}

// expect waits for the message with data payload and returns where it arrived.
func (tn *testNet) expect(data []byte) received {
	tn.t.Helper()
	return tn.expectFunc(func(r received) bool { return slices.Equal(r.msg.Data, data) })
}

// expectFunc waits for a received message that match accepts.
func (tn *testNet) expectFunc(match func(received) bool) received {
	tn.t.Helper()
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	for {
		select {
		case r := <-tn.got:
			if match(r) {
				return r
			}
		case <-timer.C:
			tn.t.Fatalf("expected message never arrived")
			return received{}
		}
	}
}

func TestLoopbackSendToKeyAndID(t *testing.T) {
	tn := newLoopbackNet(t, 40, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range 50 {
		from := tn.nodes[mrand(len(tn.nodes))]
		var key Key
		rand.Read(key[:])
		data := fmt.Appendf(nil, "key message %d", i)
		require.NoError(t, from.SendToKey(ctx, data, key))
		r := tn.expect(data)
		require.Equal(t, closestID(tn.nodes, key), r.at, "message %d went to the wrong node", i)
		require.Equal(t, from.ID(), r.msg.From)
		require.Equal(t, key, r.msg.To)
		require.True(t, r.msg.ByKey)
	}
	for i := range 50 {
		from := tn.nodes[mrand(len(tn.nodes))]
		to := tn.nodes[mrand(len(tn.nodes))]
		data := fmt.Appendf(nil, "id message %d", i)
		require.NoError(t, from.SendTo(ctx, data, to.ID()))
		r := tn.expect(data)
		require.Equal(t, to.ID(), r.at)
		require.Equal(t, from.ID(), r.msg.From)
		require.Equal(t, to.ID().Key(), r.msg.To)
		require.False(t, r.msg.ByKey)
	}
}

// testLogger logs at debug level to the test log when P2PSOCK_TEST_DEBUG is set.
func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("P2PSOCK_TEST_DEBUG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// Nodes that join all at once, through one entry point, route exactly as soon
// as their Bind calls have returned.
func TestLoopbackConcurrentJoins(t *testing.T) {
	tn := newLoopbackNet(t, 1, Config{})
	entry := tn.nodes[0].UDPAddr().String()
	var wg sync.WaitGroup
	var mu sync.Mutex
	for range 39 {
		wg.Go(func() {
			n, err := NewNode(Config{ListenAddr: "127.0.0.1:0", Bootstrap: []string{entry}, JoinOnly: true})
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			require.NoError(t, n.Bind(ctx))
			mu.Lock()
			tn.nodes = append(tn.nodes, n)
			mu.Unlock()
		})
	}
	wg.Wait()
	for _, n := range tn.nodes[1:] {
		tn.receive(n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	exact := 0
	for i := range 200 {
		from := tn.nodes[mrand(len(tn.nodes))]
		var key Key
		rand.Read(key[:])
		data := fmt.Appendf(nil, "concurrent %d", i)
		require.NoError(t, from.SendToKey(ctx, data, key))
		if tn.expect(data).at == closestID(tn.nodes, key) {
			exact++
		}
	}
	require.Equal(t, 200, exact)
}
