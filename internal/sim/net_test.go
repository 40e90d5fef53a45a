package sim_test

import (
	"errors"
	"net"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/sim"
)

// A datagram arrives after half the round-trip time of the latency model,
// in virtual time; a full queue drops and counts; a read deadline ends a
// read; Close ends one.
func TestVirtualNetworkSockets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := sim.New(1)
		nw.Latency = func(a, b int) time.Duration { return 100 * time.Millisecond }
		a, err := nw.Listen(0, 1)
		require.NoError(t, err)
		b, err := nw.Listen(1, 1)
		require.NoError(t, err)
		_, err = nw.Listen(1, 1)
		require.Error(t, err, "an address in use")

		start := time.Now()
		_, err = a.WriteTo([]byte("hi"), b.LocalAddr())
		require.NoError(t, err)
		buf := make([]byte, 10)
		n, from, err := b.ReadFrom(buf)
		require.NoError(t, err)
		require.Equal(t, "hi", string(buf[:n]))
		require.Equal(t, a.LocalAddr().String(), from.String())
		require.Equal(t, 50*time.Millisecond, time.Since(start), "one way is half the RTT (virtual time)")

		for range sim.QueueLen + 10 {
			_, err = a.WriteTo([]byte("x"), b.LocalAddr())
			require.NoError(t, err)
		}
		time.Sleep(time.Second)
		require.Equal(t, uint64(10), nw.QueueDrops.Load())

		require.NoError(t, a.SetReadDeadline(time.Now().Add(time.Second)))
		_, _, err = a.ReadFrom(buf)
		require.True(t, errors.Is(err, os.ErrDeadlineExceeded), "%v", err)

		require.NoError(t, a.SetReadDeadline(time.Time{}))
		done := make(chan error)
		go func() {
			_, _, err := a.ReadFrom(buf)
			done <- err
		}()
		synctest.Wait()
		require.NoError(t, a.Close())
		require.ErrorIs(t, <-done, net.ErrClosed)
		require.NoError(t, b.Close())
	})
}
