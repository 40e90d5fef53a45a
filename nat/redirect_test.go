package nat

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSocketRedirectLoopback: once redirected, the QUIC packets the socket
// sends to one address go to another; its other packets (overlay, STUN) still
// go where they are sent, and ending the redirect restores the first
// address. Real UDP sockets on loopback.
func TestSocketRedirectLoopback(t *testing.T) {
	listen := func() *net.UDPConn {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		return c
	}
	pc := listen()
	s := NewSocket(pc)
	s.Start()
	t.Cleanup(func() { s.Close() })
	old, now := listen(), listen()
	recv := func(c *net.UDPConn) []byte {
		t.Helper()
		buf := make([]byte, 100)
		require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
		n, _, err := c.ReadFrom(buf)
		require.NoError(t, err)
		return buf[:n]
	}
	quicPkt, overlayPkt := []byte{0x40, 1, 2, 3}, []byte{0x20, 4, 5, 6}

	require.True(t, s.Redirect(old.LocalAddr().(*net.UDPAddr).AddrPort(), now.LocalAddr().(*net.UDPAddr).AddrPort()))
	require.NoError(t, s.WriteTo(quicPkt, old.LocalAddr()))
	require.Equal(t, quicPkt, recv(now), "a QUIC packet follows the redirect")
	require.NoError(t, s.WriteTo(overlayPkt, old.LocalAddr()))
	require.Equal(t, overlayPkt, recv(old), "other packets do not")

	require.True(t, s.Redirect(old.LocalAddr().(*net.UDPAddr).AddrPort(), netip.AddrPort{}))
	require.NoError(t, s.WriteTo(quicPkt, old.LocalAddr()))
	require.Equal(t, quicPkt, recv(old), "the redirect ended")
}
