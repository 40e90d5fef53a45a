package nat

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
)

// TestSocketInlineLoopback: the packets of the inline handler's first byte
// are forwarded (in order, unchanged), consumed, or queued to the Handler
// as it says; the packets of other bytes that share their read batches
// still reach their Handler, intact. Real UDP sockets on loopback.
func TestSocketInlineLoopback(t *testing.T) {
	listen := func() *net.UDPConn {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		return c
	}
	s := NewSocket(listen())
	target, sender := listen(), listen()
	to := target.LocalAddr().(*net.UDPAddr).AddrPort()

	var consumed atomic.Int64
	var mu sync.Mutex
	var queued, overlay [][]byte
	keep := func(into *[][]byte) Handler {
		return func(pkt []byte, _ net.Addr) {
			mu.Lock()
			*into = append(*into, append([]byte(nil), pkt...))
			mu.Unlock()
		}
	}
	s.Handle(0x1F, 0x1F, keep(&queued))
	s.Handle(0x20, 0x20, keep(&overlay))
	s.HandleInline(0x1F, func(pkt []byte, from netip.AddrPort) (InlineVerdict, netip.AddrPort) {
		if from != sender.LocalAddr().(*net.UDPAddr).AddrPort() || len(pkt) < 2 {
			return Consumed, netip.AddrPort{}
		}
		switch pkt[1] {
		case 0:
			return Forward, to
		case 1:
			consumed.Add(1)
			return Consumed, netip.AddrPort{}
		}
		return Queue, netip.AddrPort{}
	})
	s.Start()
	t.Cleanup(func() { s.Close() })

	const rounds = 50
	buf := make([]byte, 1500)
	for i := range rounds {
		seq := byte(i)
		// One burst, likely read in one batch: an overlay packet after
		// forwarded and consumed ones moves to the front of the batch.
		for _, p := range [][]byte{{0x1F, 0, seq}, {0x1F, 1, seq}, {0x20, seq, 7, 7}, {0x1F, 2, seq}, {0x1F, 0, seq, 1}} {
			_, err := sender.WriteTo(p, s.LocalAddr())
			require.NoError(t, err)
		}
		for _, want := range [][]byte{{0x1F, 0, seq}, {0x1F, 0, seq, 1}} {
			require.NoError(t, target.SetReadDeadline(time.Now().Add(5*time.Second)))
			n, _, err := target.ReadFrom(buf)
			require.NoError(t, err)
			require.Equal(t, want, buf[:n], "forwarded unchanged and in order")
		}
		testnet.Eventually(t, 5*time.Second, "the queued and overlay packets", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(queued) == i+1 && len(overlay) == i+1
		})
		mu.Lock()
		require.Equal(t, []byte{0x1F, 2, seq}, queued[i])
		require.Equal(t, []byte{0x20, seq, 7, 7}, overlay[i])
		mu.Unlock()
	}
	require.Equal(t, int64(rounds), consumed.Load())
	taken, errs := s.InlineStats()
	require.Equal(t, uint64(3*rounds), taken)
	require.Zero(t, errs)
}
