package p2psock

// Benchmarks of a service's PacketConn on its two paths, in the same run:
// QUIC datagrams on the connection between the two nodes (the default
// where one exists) and routed overlay messages (Config.DatagramsOverOverlay),
// against raw UDP between two loopback sockets. One writer sends 1,000-byte
// datagrams as fast as WriteTo returns; loss-% is the share that never
// reached the reader. Results: docs/BENCHMARKS.md, "PacketConn".
//
//	go test -run '^$' -bench PacketConn -benchtime 2s .

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
)

const benchDatagram = 1000 // bytes of each datagram

func BenchmarkPacketConn(b *testing.B) {
	p2p := func(b *testing.B, cfg Config) {
		testnet.CheckLeaks(b)
		a, c := benchNet(b, Config{}, cfg)
		p2pStreamPair(b, a, c) // the QUIC connection between them
		pa, err := a.Service("bench").ListenPacket()
		require.NoError(b, err)
		b.Cleanup(func() { pa.Close() })
		pc, err := c.Service("bench").ListenPacket()
		require.NoError(b, err)
		b.Cleanup(func() { pc.Close() })
		benchDatagrams(b, pa, pc, &Addr{c.ID()})
	}
	b.Run("quic-datagram", func(b *testing.B) { p2p(b, Config{}) })
	b.Run("overlay", func(b *testing.B) { p2p(b, Config{DatagramsOverOverlay: true}) })
	b.Run("udp", func(b *testing.B) {
		s, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		require.NoError(b, err)
		b.Cleanup(func() { s.Close() })
		r, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		require.NoError(b, err)
		b.Cleanup(func() { r.Close() })
		benchDatagrams(b, s, r, r.LocalAddr())
	})
}

// benchDatagrams sends b.N datagrams from s to the reader r (at to), and
// reports throughput and the share lost.
func benchDatagrams(b *testing.B, s, r net.PacketConn, to net.Addr) {
	b.Helper()
	var got atomic.Int64
	var sending atomic.Bool
	sending.Store(true)
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 2*benchDatagram)
		for {
			r.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			n, _, err := r.ReadFrom(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) && sending.Load() {
				continue
			}
			if err != nil {
				return // silent for 500 ms after the last write
			}
			if n == benchDatagram {
				got.Add(1)
			}
		}
	})
	msg := make([]byte, benchDatagram)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b.SetBytes(benchDatagram)
	b.ResetTimer()
	for i := 0; i < b.N && ctx.Err() == nil; i++ {
		if _, err := s.WriteTo(msg, to); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	sending.Store(false)
	wg.Wait()
	b.ReportMetric(100*float64(int64(b.N)-got.Load())/float64(b.N), "loss-%")
}
