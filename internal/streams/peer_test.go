package streams

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
)

// TestLoopbackAcceptQueueBounds: streams a peer opens wait for Accept, at
// most AcceptQueuePerPeer of them; a stream past that is refused (the
// opener's read fails with a stream error of code 0) and counted, and the
// streams that fitted are all accepted in the end.
func TestLoopbackAcceptQueueBounds(t *testing.T) {
	const perPeer = 2
	nodes := newNet(t, 2, func(_ int, c *Config) { c.AcceptQueuePerPeer = perPeer })
	b, a := nodes[0], nodes[1] // a joined through b, so it knows b
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var opened []*Stream
	for i := range perPeer {
		s, err := a.eng.Dial(ctx, b.ID())
		require.NoError(t, err)
		opened = append(opened, s)
		testnet.Eventually(t, 10*time.Second, "the stream to wait for Accept", func() bool { return b.eng.Counters().Waiting == i+1 })
	}
	require.Zero(t, b.eng.Counters().StreamsRefused)

	refused, err := a.eng.Dial(ctx, b.ID())
	require.NoError(t, err, "the opener learns of the refusal from the stream")
	require.NoError(t, refused.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = refused.Read(make([]byte, 1))
	var se *quic.StreamError
	require.ErrorAs(t, err, &se)
	require.EqualValues(t, 0, se.ErrorCode)
	require.True(t, se.Remote)
	c := b.eng.Counters()
	require.EqualValues(t, 1, c.StreamsRefused)
	require.EqualValues(t, 1, c.PeerQueueFull)

	for range opened {
		s, err := b.eng.Accept(ctx)
		require.NoError(t, err)
		s.Close()
	}
}

// TestLoopbackBadStreamVersion: a stream whose first byte is not the stream
// version is never accepted, and is stopped with BadStream.
func TestLoopbackBadStreamVersion(t *testing.T) {
	nodes := newNet(t, 2, nil)
	b, a := nodes[0], nodes[1] // a joined through b, so it knows b
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, _ := pair(t, ctx, a, b) // the connection is up
	s.Close()
	qs, err := s.pc.qc.OpenStreamSync(ctx)
	require.NoError(t, err)
	_, err = qs.Write([]byte{streamVersion + 1, 'x'})
	require.NoError(t, err)
	qs.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = qs.Read(make([]byte, 1))
	var se *quic.StreamError
	require.ErrorAs(t, err, &se)
	require.Equal(t, quic.StreamErrorCode(closeBadStream), se.ErrorCode)
	actx, acancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer acancel()
	_, err = b.eng.Accept(actx)
	require.ErrorIs(t, err, context.DeadlineExceeded, "nothing was accepted")
}

// TestLoopbackPeerLeft: when a peer closes, the stream it wrote to ends
// after every byte it wrote; its connection stops being the current one at
// once (a new Dial would set up another), and closes once the application
// has closed its last stream of it.
func TestLoopbackPeerLeft(t *testing.T) {
	nodes := newNet(t, 3, nil)
	a, b := nodes[1], nodes[2]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sa, sb := pair(t, ctx, a, b)
	data := make([]byte, 256<<10) // within the receive windows: the write returns before b reads
	rand.Read(data)
	_, err := sa.Write(data)
	require.NoError(t, err)
	a.eng.Close()
	got, err := io.ReadAll(sb)
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got), "got %d of %d bytes", len(got), len(data))
	require.Zero(t, b.eng.Counters().Conns, "a leaving peer's connection is not current")
	require.NoError(t, sb.pc.qc.Context().Err(), "the connection stays while a stream of it is open")
	require.NoError(t, sb.Close())
	select {
	case <-sb.pc.qc.Context().Done():
	case <-ctx.Done():
		t.Fatal("the connection of a peer that left stayed open")
	}
}

// TestLoopbackCloseUnresponsivePeer: Close does not wait on a peer that
// stopped answering in the middle of a transfer (its socket is gone): the
// goodbye and the linger are bounded, and Close returns well before QUIC's
// idle timeout would end the connection. The stream's pending Write fails
// with net.ErrClosed.
func TestLoopbackCloseUnresponsivePeer(t *testing.T) {
	nodes := newNet(t, 3, nil)
	a, b := nodes[1], nodes[2]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sa, _ := pair(t, ctx, a, b)
	_, err := sa.Write(make([]byte, 64<<10))
	require.NoError(t, err)
	require.NoError(t, b.Sock.Close()) // b crashes: nothing more is answered
	wrote := make(chan error, 1)
	go func() {
		buf := make([]byte, 64<<10)
		for {
			if _, err := sa.Write(buf); err != nil { // blocks on flow control
				wrote <- err
				return
			}
		}
	}()
	closed := make(chan struct{})
	go func() {
		a.eng.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(maxLinger + goodbyeWait + 3*time.Second):
		t.Fatal("Close waited on the unresponsive peer")
	}
	require.ErrorIs(t, <-wrote, net.ErrClosed)
	_, err = a.eng.Dial(ctx, b.ID())
	require.ErrorIs(t, err, net.ErrClosed)
	_, err = a.eng.Accept(ctx)
	require.True(t, errors.Is(err, net.ErrClosed))
}

// TestLoopbackPeerDiesAfterGoodbye: a peer that half-closed its stream,
// said its node is closing, and whose process then ended before it stopped
// the stream (its socket is gone: no STOP_SENDING, no CONNECTION_CLOSE
// comes) is noticed by this side's writes within the goodbye wait and the
// linger, not at QUIC's idle timeout; what it sent is still read whole
// afterwards.
func TestLoopbackPeerDiesAfterGoodbye(t *testing.T) {
	nodes := newNet(t, 3, nil)
	a, b := nodes[1], nodes[2]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sa, sb := pair(t, ctx, a, b)
	data := make([]byte, 64<<10)
	rand.Read(data)
	_, err := sa.Write(data)
	require.NoError(t, err)
	require.NoError(t, sa.CloseWrite())
	require.Equal(t, []bool{true}, a.eng.sayGoodbye([]*peerConn{sa.pc}), "b acknowledged the goodbye")
	require.NoError(t, a.Sock.Close()) // a's process ends
	var werr error
	testnet.Eventually(t, goodbyeWait+maxLinger+5*time.Second, "b's writes fail", func() bool {
		_, werr = sb.Write(nil)
		return werr != nil
	})
	require.ErrorIs(t, werr, ErrReset, "the peer left")
	require.ErrorIs(t, sb.CloseWrite(), ErrReset)
	got, err := io.ReadAll(sb)
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got), "got %d of %d bytes", len(got), len(data))
}
