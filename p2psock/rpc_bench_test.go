package p2psock

// Benchmarks of a call's round trip, in the same run: Call by ID and
// CallKey to the callee's own key, an acknowledged SendTo of the same
// request (the message without a reply), and a raw UDP round trip between
// two loopback sockets as the baseline. The caller and the callee joined
// through a third node; 100-byte requests, the handler echoes them.
// Results: docs/BENCHMARKS.md, "Calls".
//
//	go test -run '^$' -bench Call -benchtime 2000x -count 3 .

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
)

func BenchmarkCall(b *testing.B) {
	const size = 100
	req := make([]byte, size)
	p2p := func(b *testing.B, op func(ctx context.Context, caller *Service, callee *Node) error) {
		testnet.CheckLeaks(b)
		a, c := benchNet(b, Config{}, Config{})
		callee := c.Service("bench")
		callee.Handle(func(_ context.Context, m Message) ([]byte, error) { return m.Data, nil })
		caller := a.Service("bench")
		go func() { // the callee's messages (the SendTo case) are read and dropped
			for {
				if _, err := callee.RecvFrom(context.Background()); err != nil {
					return
				}
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		require.NoError(b, op(ctx, caller, c)) // the first finds the route
		for b.Loop() {
			if err := op(ctx, caller, c); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("call-id", func(b *testing.B) {
		p2p(b, func(ctx context.Context, s *Service, to *Node) error {
			reply, err := s.Call(ctx, to.ID(), req)
			if err == nil && len(reply) != size {
				b.Fatalf("reply of %d bytes", len(reply))
			}
			return err
		})
	})
	b.Run("call-key", func(b *testing.B) {
		p2p(b, func(ctx context.Context, s *Service, to *Node) error {
			reply, from, err := s.CallKey(ctx, to.ID().Key(), req)
			if err == nil && (len(reply) != size || from != to.ID()) {
				b.Fatalf("reply of %d bytes from %v", len(reply), from)
			}
			return err
		})
	})
	b.Run("sendto", func(b *testing.B) {
		p2p(b, func(ctx context.Context, s *Service, to *Node) error { return s.SendTo(ctx, req, to.ID()) })
	})
	b.Run("udp", func(b *testing.B) {
		a, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		require.NoError(b, err)
		defer a.Close()
		e, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		require.NoError(b, err)
		defer e.Close()
		done := make(chan struct{})
		go func() {
			defer close(done)
			buf := make([]byte, 1500)
			for {
				n, from, err := e.ReadFrom(buf)
				if err != nil {
					return
				}
				_, _ = e.WriteTo(buf[:n], from)
			}
		}()
		buf := make([]byte, 1500)
		for b.Loop() {
			if _, err := a.WriteTo(req, e.LocalAddr()); err != nil {
				b.Fatal(err)
			}
			if _, _, err := a.ReadFrom(buf); err != nil {
				b.Fatal(err)
			}
		}
		e.Close()
		<-done
	})
}
