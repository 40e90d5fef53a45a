package p2psock

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

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
