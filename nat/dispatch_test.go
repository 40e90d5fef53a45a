package nat

import (
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/ring"
	"github.com/p2psock/p2psock/internal/testnet"
)

// TestLoopbackSocketDispatcherEnds: a burst of packets on a real UDP
// socket on loopback reaches its handler in order (or is counted as
// dropped), and once the burst is handled no dispatcher runs and the
// queues hold no array beyond the smallest.
func TestLoopbackSocketDispatcherEnds(t *testing.T) {
	s, err := Listen("127.0.0.1:0")
	require.NoError(t, err)
	defer s.Close()
	var mu sync.Mutex
	var got []int
	s.Handle(0x20, 0x20, func(pkt []byte, _ net.Addr) {
		var i int
		fmt.Sscanf(string(pkt[1:]), "%d", &i)
		mu.Lock()
		got = append(got, i)
		mu.Unlock()
	})
	s.Start()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer c.Close()
	const burst = 300
	for i := range burst {
		_, err := c.WriteTo(fmt.Appendf([]byte{0x20}, "%d", i), s.LocalAddr())
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		_, _, _, drops := s.Stats()
		return len(got)+int(drops) == burst
	}, 10*time.Second, time.Millisecond)
	mu.Lock()
	for i := 1; i < len(got); i++ {
		require.Less(t, got[i-1], got[i], "out of order")
	}
	mu.Unlock()
	require.Eventually(t, func() bool {
		s.qmu.Lock()
		defer s.qmu.Unlock()
		return !s.dispatching && s.pri.Cap() <= ring.MinSize && s.rest.Cap() <= ring.MinSize
	}, 10*time.Second, time.Millisecond)
}

// TestLoopbackSocketReadsWithoutAGoroutineOfItsOwn: the socket takes the
// non-QUIC packets where quic-go reads them: a burst far longer than
// quic-go's queue of 32 arrives whole while the handler is blocked, and
// once the burst is handled no goroutine runs the socket's code (quic-go's
// reader is the only one waiting on the socket).
func TestLoopbackSocketReadsWithoutAGoroutineOfItsOwn(t *testing.T) {
	s, err := Listen("127.0.0.1:0")
	require.NoError(t, err)
	defer s.Close()
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	defer unblock() // before Close, which waits for the handler
	var n atomic.Int32
	s.Handle(0x20, 0x20, func([]byte, net.Addr) {
		if n.Add(1) == 1 {
			<-release
		}
	})
	s.Start()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer c.Close()
	const burst = 300
	for i := range burst {
		_, err := c.WriteTo(fmt.Appendf([]byte{0x20}, "%d", i), s.LocalAddr())
		require.NoError(t, err)
	}
	testnet.Eventually(t, 10*time.Second, "the burst is queued", func() bool {
		s.qmu.Lock()
		defer s.qmu.Unlock()
		return s.rest.Len() == burst-1
	})
	unblock()
	testnet.Eventually(t, 10*time.Second, "the burst is handled", func() bool { return n.Load() == burst })
	_, _, _, drops := s.Stats()
	require.Zero(t, drops)
	testnet.Eventually(t, 10*time.Second, "no goroutine runs the socket's code", func() bool {
		buf := make([]byte, 1<<20)
		return !strings.Contains(string(buf[:runtime.Stack(buf, true)]), "nat.(*Socket)")
	})
}

// TestLoopbackSocketSaysWhenItDrops: a handler that falls behind makes the
// socket drop packets, and the function given to OnDrops hears of it once
// for the burst (at most once a second), not once per packet.
func TestLoopbackSocketSaysWhenItDrops(t *testing.T) {
	s, err := Listen("127.0.0.1:0")
	require.NoError(t, err)
	defer s.Close()
	release := make(chan struct{})
	defer close(release) // before Close, which waits for the handler
	s.Handle(0x20, 0x20, func([]byte, net.Addr) { <-release })
	var mu sync.Mutex
	notes := 0
	s.OnDrops(func() {
		mu.Lock()
		notes++
		mu.Unlock()
	})
	s.Start()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer c.Close()
	start := time.Now()
	for range 5000 {
		_, err := c.WriteTo([]byte{0x20, 1}, s.LocalAddr())
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		_, _, _, drops := s.Stats()
		return drops > 0
	}, 10*time.Second, time.Millisecond, "a handler that blocks makes the socket drop")
	mu.Lock()
	n := notes
	mu.Unlock()
	_, _, _, drops := s.Stats()
	require.Positive(t, n, "drops were not reported")
	// One note per started second of the burst (dropNoteEvery).
	require.LessOrEqual(t, n, 1+int(time.Since(start)/dropNoteEvery), "%d notes for %d drops", n, drops)
}
