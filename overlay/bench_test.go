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

// BenchmarkLoopbackSendToID measures an acknowledged Send of 100 bytes to
// the ID of another node (sealed to it) in a 50-node loopback network.
func BenchmarkLoopbackSendToID(b *testing.B) {
	benchmarkSendToID(b, 100)
}

// BenchmarkLoopbackSendToIDLarge is BenchmarkLoopbackSendToID with 16 KiB
// messages (18 fragments).
func BenchmarkLoopbackSendToIDLarge(b *testing.B) {
	benchmarkSendToID(b, 16<<10)
}

func benchmarkSendToID(b *testing.B, size int) {
	testnet.CheckLeaks(b)
	tn := loopback(b, 50, overlay.Config{})
	tn.in.Discard()
	ctx := context.Background()
	data := make([]byte, size)
	b.SetBytes(int64(size))
	n := len(tn.Nodes)
	for i := 0; b.Loop(); i++ {
		from, to := tn.Nodes[i%n], tn.Nodes[(i*7+1)%n]
		if from == to {
			to = tn.Nodes[(i+1)%n]
		}
		if err := from.Send(ctx, data, to.ID().Key(), false); err != nil {
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
