package streams

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/overlay"
)

// TestLoopbackServiceStreams: streams to a named service and to the
// default service share the accept queue and its per-peer bound, each
// Accept takes only its own service's streams (a pending default Accept
// does not swallow a named stream), a stream past the bound is refused
// before it is answered, and once the service stops listening its waiting
// streams are reset and new ones are answered NoService (counted).
func TestLoopbackServiceStreams(t *testing.T) {
	const perPeer = 2
	nodes := newNet(t, 2, func(_ int, c *Config) { c.AcceptQueuePerPeer = perPeer })
	b, a := nodes[0], nodes[1]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tag := ServiceTag(wire.HashName("chat"))
	require.True(t, b.eng.ListenService(tag))
	require.False(t, b.eng.ListenService(tag), "one listener per service")

	defaults := make(chan *Stream, 1)
	go func() {
		s, err := b.eng.Accept(ctx)
		if err != nil {
			s = nil
		}
		defaults <- s
	}()
	named, err := a.eng.DialService(ctx, b.ID(), tag)
	require.NoError(t, err)
	_, err = named.Write([]byte("n"))
	require.NoError(t, err)
	got, err := b.eng.AcceptService(ctx, tag)
	require.NoError(t, err)
	buf := make([]byte, 1)
	_, err = io.ReadFull(got, buf)
	require.NoError(t, err)
	require.Equal(t, "n", string(buf), "the answer byte is not seen by the application")
	got.Close()
	def, err := a.eng.Dial(ctx, b.ID())
	require.NoError(t, err)
	defer def.Close()
	ds := <-defaults
	require.NotNil(t, ds, "the pending default Accept took the default stream")
	ds.Close()

	// The bound is shared: one named and one default stream fill it.
	waiting, err := a.eng.DialService(ctx, b.ID(), tag)
	require.NoError(t, err)
	def2, err := a.eng.Dial(ctx, b.ID())
	require.NoError(t, err)
	defer def2.Close()
	testnet.Eventually(t, 10*time.Second, "both streams to wait", func() bool { return b.eng.Counters().Waiting == perPeer })
	_, err = a.eng.DialService(ctx, b.ID(), tag)
	require.ErrorIs(t, err, ErrRefused)
	require.EqualValues(t, 1, b.eng.Counters().PeerQueueFull)

	b.eng.CloseService(tag)
	require.NoError(t, waiting.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = waiting.Read(buf)
	var se *quic.StreamError
	require.ErrorAs(t, err, &se, "a waiting stream is reset when its service stops listening")
	_, err = a.eng.DialService(ctx, b.ID(), tag)
	require.ErrorIs(t, err, overlay.ErrNoService)
	require.NoError(t, ctx.Err())
	c := b.eng.Counters()
	require.EqualValues(t, 1, c.NoService)
	require.Equal(t, 1, c.Waiting, "the default stream still waits")
	actx, acancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer acancel()
	_, err = b.eng.AcceptService(actx, tag)
	require.True(t, errors.Is(err, net.ErrClosed), "AcceptService of a service that does not listen: %v", err)
}

// FuzzReadOpening: any opening of a stream is read without panicking, and
// only the two versions are taken.
func FuzzReadOpening(f *testing.F) {
	f.Add([]byte{streamVersion})
	f.Add(append([]byte{wire.StreamVersionNamed}, bytes.Repeat([]byte{7}, 8)...))
	f.Add([]byte{wire.StreamVersionNamed, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{wire.StreamVersionNamed, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		tag, ok := readOpening(bytes.NewReader(b))
		if !ok {
			return
		}
		switch b[0] {
		case streamVersion:
			require.Equal(t, ServiceTag{}, tag)
		case wire.StreamVersionNamed:
			require.Equal(t, b[1:9], tag[:])
			require.NotEqual(t, ServiceTag{}, tag)
		default:
			t.Fatalf("version %#x taken", b[0])
		}
	})
}
