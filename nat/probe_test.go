package nat

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSendProbeLoopback: a probe leaves from the socket's IP and another
// port; a loopback socket has no other IP to send one from; a closed socket
// sends none.
func TestSendProbeLoopback(t *testing.T) {
	s, err := Listen("127.0.0.1:0")
	require.NoError(t, err)
	defer s.Close()
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer rx.Close()
	to := rx.LocalAddr().(*net.UDPAddr).AddrPort()

	require.NoError(t, s.SendProbe([]byte("probe"), to, false))
	buf := make([]byte, 64)
	require.NoError(t, rx.SetReadDeadline(time.Now().Add(5*time.Second)))
	n, from, err := rx.ReadFromUDPAddrPort(buf)
	require.NoError(t, err)
	require.Equal(t, "probe", string(buf[:n]))
	own := netip.MustParseAddrPort(s.LocalAddr().String())
	require.Equal(t, own.Addr(), from.Addr().Unmap())
	require.NotEqual(t, own.Port(), from.Port())

	require.ErrorIs(t, s.SendProbe([]byte("probe"), to, true), ErrNoProbeSource)
	require.NoError(t, s.Close())
	require.ErrorIs(t, s.SendProbe([]byte("probe"), to, false), net.ErrClosed)
}
