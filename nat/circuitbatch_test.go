package nat

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/internal/wire"
)

// TestLoopbackCircuitWritesGSOBatches: a QUIC connection over the two ends
// of a circuit (here without a relay: each end's frames go straight to the
// other node's socket, as on a circuit moved to a direct path) carries a
// 4 MiB stream intact, and the sending end sends its frames as GSO batches
// of the node's socket, several frames a system call. Real UDP sockets on
// loopback, real quic-go.
func TestLoopbackCircuitWritesGSOBatches(t *testing.T) {
	if runtime.GOOS != "linux" || os.Getenv("QUIC_GO_DISABLE_GSO") != "" {
		t.Skip("UDP GSO is Linux's, and quic-go's environment can turn it off")
	}
	listen := func() *net.UDPConn {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		return c
	}
	ua, ub := listen(), listen()
	if !kernelGSO(t, ua) {
		t.Skip("the kernel has no UDP GSO")
	}
	sa, sb := NewSocket(ua), NewSocket(ub)
	t.Cleanup(func() { sa.Close(); sb.Close() })
	id := [8]byte{1, 2, 3, 4, 5, 6, 7, 8}
	ca := NewCircuitConn(sa, id, ub.LocalAddr().(*net.UDPAddr), nil)
	cb := NewCircuitConn(sb, id, ua.LocalAddr().(*net.UDPAddr), nil)
	t.Cleanup(func() { ca.Close(); cb.Close() })
	deliverTo := func(c *CircuitConn) InlineHandler {
		return func(pkt []byte, _ netip.AddrPort) (InlineVerdict, netip.AddrPort) {
			if got, payload, err := wire.ParseCircuitFrame(pkt); err == nil && got == id {
				c.Deliver(payload)
			}
			return Consumed, netip.AddrPort{}
		}
	}
	sa.HandleInline(wire.TypeCircuit, deliverTo(ca))
	sb.HandleInline(wire.TypeCircuit, deliverTo(cb))
	sa.Start()
	sb.Start()

	ta := &quic.Transport{Conn: ca.QUICConn()}
	tb := &quic.Transport{Conn: cb.QUICConn()}
	t.Cleanup(func() { ta.Close(); tb.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	serverTLS, clientTLS := testnet.SelfSignedTLS(t, "circuit-test")
	ln, err := tb.Listen(serverTLS, nil)
	require.NoError(t, err)

	want := make([]byte, 4<<20)
	_, _ = rand.Read(want)
	got := make(chan []byte, 1)
	go func() {
		defer close(got)
		conn, err := ln.Accept(ctx)
		if err != nil {
			return
		}
		st, err := conn.AcceptStream(ctx)
		if err != nil {
			return
		}
		b, _ := io.ReadAll(st)
		got <- b
		_ = conn.CloseWithError(0, "")
	}()

	conn, err := ta.Dial(ctx, ub.LocalAddr(), clientTLS, nil)
	require.NoError(t, err)
	st, err := conn.OpenStreamSync(ctx)
	require.NoError(t, err)
	_, err = st.Write(want)
	require.NoError(t, err)
	require.NoError(t, st.Close())
	var b []byte
	select {
	case b = <-got:
	case <-ctx.Done():
		t.Fatal("the stream did not arrive")
	}
	require.True(t, bytes.Equal(want, b), "the stream arrived changed (%d of %d bytes)", len(b), len(want))

	batches, frames := ca.batches.Load(), ca.batched.Load()
	t.Logf("the sending end sent %d frames in %d GSO batches", frames, batches)
	require.NotZero(t, batches, "the sending end sent no GSO batch")
	require.Greater(t, frames, batches, "GSO batches of one frame each")
}

// kernelGSO reports whether the kernel takes UDP_SEGMENT on c.
func kernelGSO(t *testing.T, c *net.UDPConn) bool {
	rc, err := c.SyscallConn()
	require.NoError(t, err)
	var gerr error
	require.NoError(t, rc.Control(func(fd uintptr) {
		_, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT)
	}))
	return gerr == nil
}
