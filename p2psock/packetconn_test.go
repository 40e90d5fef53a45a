package p2psock

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
)

// Datagrams go both ways by ID and by key, from concurrent writers, and
// ReadFrom names their sender.
func TestPacketConn(t *testing.T) {
	tn := newLoopbackNet(t, 2, Config{})
	a, b := tn.nodes[0], tn.nodes[1]
	pa, err := a.Service("dgram").ListenPacket()
	require.NoError(t, err)
	defer pa.Close()
	_, err = a.Service("dgram").ListenPacket()
	require.ErrorIs(t, err, ErrInUse)
	pb, err := b.Service("dgram").ListenPacket()
	require.NoError(t, err)
	defer pb.Close()

	const writers = 8
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Go(func() {
			_, err := pb.WriteTo([]byte{byte(i)}, &Addr{a.ID()})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	seen := map[byte]bool{}
	buf := make([]byte, 16)
	for range writers {
		require.NoError(t, pa.SetReadDeadline(time.Now().Add(20*time.Second)))
		n, from, err := pa.ReadFrom(buf)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		require.Equal(t, b.ID(), from.(*Addr).ID)
		seen[buf[0]] = true
	}
	require.Len(t, seen, writers)

	_, err = pa.WriteToKey(make([]byte, MaxMessageSize), b.ID().Key())
	require.NoError(t, err)
	big := make([]byte, MaxMessageSize+1)
	n, _, err := pb.ReadFrom(big)
	require.NoError(t, err)
	require.Equal(t, MaxMessageSize, n)
	_, err = pa.WriteTo(big, &Addr{b.ID()})
	require.ErrorIs(t, err, ErrMessageTooLarge)
}

// Deadlines and Close end ReadFrom and WriteTo as net.PacketConn requires
// (the cases golang.org/x/net/nettest checks of a conn): a past deadline
// fails at once with a timeout, a deadline set while a call is blocked ends
// it, clearing a deadline restores blocking, and Close unblocks every call.
func TestPacketConnDeadlines(t *testing.T) {
	tn := newLoopbackNet(t, 2, Config{})
	a := tn.nodes[0]
	pc, err := a.Service("dgram").ListenPacket()
	require.NoError(t, err)
	buf := make([]byte, 8)
	isTimeout := func(err error) bool {
		var ne net.Error
		return errors.As(err, &ne) && ne.Timeout() && errors.Is(err, os.ErrDeadlineExceeded)
	}

	require.NoError(t, pc.SetReadDeadline(time.Now().Add(-time.Second)))
	_, _, err = pc.ReadFrom(buf)
	require.True(t, isTimeout(err), "a past deadline: %v", err)

	require.NoError(t, pc.SetDeadline(time.Time{}))
	done := make(chan error, 1)
	go func() { _, _, err := pc.ReadFrom(buf); done <- err }()
	select {
	case err := <-done:
		t.Fatalf("ReadFrom returned without a deadline: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	require.NoError(t, pc.SetReadDeadline(time.Now().Add(10*time.Millisecond)))
	require.True(t, isTimeout(<-done), "a deadline set while blocked ends the call")

	require.NoError(t, pc.SetWriteDeadline(time.Now().Add(-time.Second)))
	_, err = pc.WriteTo([]byte("x"), &Addr{tn.nodes[1].ID()})
	require.True(t, isTimeout(err), "a past write deadline: %v", err)

	require.NoError(t, pc.SetDeadline(time.Time{}))
	go func() { _, _, err := pc.ReadFrom(buf); done <- err }()
	require.NoError(t, pc.Close())
	require.ErrorIs(t, <-done, net.ErrClosed, "Close unblocks ReadFrom")
	require.NoError(t, pc.Close(), "Close is idempotent")
	_, err = pc.WriteTo([]byte("x"), &Addr{a.ID()})
	require.ErrorIs(t, err, net.ErrClosed)
}

// Where a QUIC connection to the peer exists, a datagram that fits in a
// QUIC datagram goes as one (no routed overlay message is sent; one to a
// service without a packet conn is dropped and counted at the peer, not
// refused); a larger one still goes over the overlay.
func TestPacketConnQUICDatagrams(t *testing.T) {
	tn := newLoopbackNet(t, 2, Config{})
	a, b := tn.nodes[0], tn.nodes[1]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ca, cb := connectPair(t, ctx, a, b) // the QUIC connection
	defer ca.Close()
	defer cb.Close()
	pa, err := a.Service("dg").ListenPacket()
	require.NoError(t, err)
	defer pa.Close()
	pb, err := b.Service("dg").ListenPacket()
	require.NoError(t, err)
	defer pb.Close()

	sent := a.Overlay().Info().Counters.MessagesSent
	msg := bytes.Repeat([]byte{7}, 1000)
	for range 20 { // a datagram may be lost; one of 20 arrives
		_, err := pa.WriteTo(msg, &Addr{b.ID()})
		require.NoError(t, err)
	}
	buf := make([]byte, 5000)
	require.NoError(t, pb.SetReadDeadline(time.Now().Add(10*time.Second)))
	n, from, err := pb.ReadFrom(buf)
	require.NoError(t, err)
	require.Equal(t, msg, buf[:n])
	require.Equal(t, a.ID(), from.(*Addr).ID)
	require.Equal(t, sent, a.Overlay().Info().Counters.MessagesSent, "no routed message was sent")

	pn, err := a.Service("nobody").ListenPacket()
	require.NoError(t, err)
	defer pn.Close()
	_, err = pn.WriteTo([]byte("x"), &Addr{b.ID()})
	require.NoError(t, err, "a QUIC datagram is not acknowledged")
	testnet.Eventually(t, 10*time.Second, "the peer to count the datagram to a service it does not offer", func() bool {
		return b.Info().Services.NoService >= 1
	})

	big := bytes.Repeat([]byte{8}, 4000)
	_, err = pa.WriteTo(big, &Addr{b.ID()})
	require.NoError(t, err)
	require.Greater(t, a.Overlay().Info().Counters.MessagesSent, sent, "a large datagram goes over the overlay")
	for { // past the small datagrams still queued
		n, _, err := pb.ReadFrom(buf)
		require.NoError(t, err)
		if n == len(big) {
			break
		}
	}
}
