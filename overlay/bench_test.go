package overlay_test

import (
	"context"
	"net"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/overlay"
)

// BenchmarkLoopbackSendToKey measures an acknowledged Send of 100 bytes to
// random keys in a 50-node loopback network. Compare with
// BenchmarkLoopbackRawUDPRoundTrip, the same payload bounced once between two
// plain UDP sockets.
func BenchmarkLoopbackSendToKey(b *testing.B) {
	testnet.CheckLeaks(b)
	tn := loopback(b, 50, overlay.Config{})
	tn.in.Discard()
	ctx := context.Background()
	data := make([]byte, 100)
	keys := make([]overlay.Key, 1024)
	for i := range keys {
		keys[i] = overlay.KeyOf([]byte{byte(i), byte(i >> 8)})
	}
	for i := 0; b.Loop(); i++ {
		if err := tn.Nodes[i%len(tn.Nodes)].Send(ctx, data, keys[i%len(keys)], true); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoopbackRawUDPRoundTrip is the baseline for BenchmarkLoopbackSendToKey.
func BenchmarkLoopbackRawUDPRoundTrip(b *testing.B) {
	a, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(b, err)
	defer a.Close()
	e, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(b, err)
	defer e.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := e.ReadFrom(buf)
			if err != nil {
				return
			}
			e.WriteTo(buf[:n], from)
		}
	}()
	msg, buf := make([]byte, 100), make([]byte, 1500)
	for b.Loop() {
		if _, err := a.WriteTo(msg, e.LocalAddr()); err != nil {
			b.Fatal(err)
		}
		if _, _, err := a.ReadFrom(buf); err != nil {
			b.Fatal(err)
		}
	}
}
