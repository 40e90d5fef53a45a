package p2psock

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/simnet"
)

// TestVnetConnectCircuit: two nodes behind symmetric NATs, in a network
// whose public nodes run with the default configuration (no TURN relay),
// connect through a circuit on a public node's own socket and exchange
// 1 MiB each way, intact; the relay counts what it forwarded.
func TestVnetConnectCircuit(t *testing.T) {
	kinds := []simnet.Kind{simnet.Public, simnet.Public, simnet.Symmetric, simnet.Symmetric}
	tn, _ := newVnetNet(t, kinds, func(_ int, c *Config) { c.RelayAddr = "" })
	a, b := tn.nodes[2], tn.nodes[3]
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	start := time.Now()
	ca, cb := connectPair(t, ctx, a, b)
	t.Logf("connected in %v: %+v", time.Since(start), ca.Path())
	defer ca.Close()
	defer cb.Close()
	require.True(t, ca.Path().Relayed, "connecting side: %+v", ca.Path())
	require.True(t, cb.Path().Relayed, "accepting side: %+v", cb.Path())

	msg := make([]byte, 1<<20)
	rand.Read(msg)
	echoed := make(chan error, 1)
	go func() {
		_, err := io.Copy(cb, cb)
		if err == nil {
			err = cb.CloseWrite()
		}
		echoed <- err
	}()
	go func() {
		ca.Write(msg)
		ca.CloseWrite()
	}()
	got, err := io.ReadAll(ca)
	require.NoError(t, err)
	require.NoError(t, <-echoed)
	require.True(t, bytes.Equal(msg, got), "%d bytes back of %d", len(got), len(msg))

	var relayed uint64
	circuits := 0
	for _, nd := range tn.nodes[:2] {
		s := nd.Info().Streams
		relayed += s.RelayedBytes
		circuits += s.Circuits
	}
	require.Equal(t, 1, circuits, "one public node relays the one connection")
	require.Greater(t, relayed, uint64(2*len(msg)), "the relay forwarded both directions")
	require.Equal(t, 1, a.Info().Streams.RelayedConns)
}
