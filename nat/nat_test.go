package nat

import (
	"net"
	"testing"
	"time"

	"github.com/pion/stun"
	"github.com/pion/turn/v2"
	"github.com/stretchr/testify/require"
)

func startSocket(t *testing.T) (*Socket, *ICE) {
	t.Helper()
	s, err := Listen("127.0.0.1:0")
	require.NoError(t, err)
	m := NewICE(s, nil, nil)
	s.Start()
	t.Cleanup(func() {
		m.Close()
		s.Close()
	})
	return s, m
}

// TestSTUNResponder: a plain binding request to a node's socket (real UDP on
// loopback) is answered with the address it came from; malformed STUN is
// dropped and counted.
func TestSTUNResponder(t *testing.T) {
	s, m := startSocket(t)
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer c.Close()

	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	_, err = c.WriteTo(req.Raw, s.LocalAddr())
	require.NoError(t, err)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	n, _, err := c.ReadFrom(buf)
	require.NoError(t, err)
	resp := &stun.Message{Raw: buf[:n]}
	require.NoError(t, resp.Decode())
	require.Equal(t, stun.BindingSuccess, resp.Type)
	require.Equal(t, req.TransactionID, resp.TransactionID)
	var xor stun.XORMappedAddress
	require.NoError(t, xor.GetFrom(resp))
	me := c.LocalAddr().(*net.UDPAddr)
	require.True(t, xor.IP.Equal(me.IP))
	require.Equal(t, me.Port, xor.Port)

	// A STUN-looking packet with a bad header and a binding request with a
	// bad attribute length: both dropped, counted, and the socket still
	// answers afterwards.
	bad := append([]byte(nil), req.Raw...)
	bad[3] = 0xFF // length beyond the packet
	_, err = c.WriteTo([]byte{0x00, 0x01, 0x00}, s.LocalAddr())
	require.NoError(t, err)
	_, err = c.WriteTo(bad, s.LocalAddr())
	require.NoError(t, err)
	_, err = c.WriteTo(req.Raw, s.LocalAddr())
	require.NoError(t, err)
	_, _, err = c.ReadFrom(buf)
	require.NoError(t, err)
	// The responder counts an answer once it is sent: the answer can arrive
	// before the count.
	require.Eventually(t, func() bool { a, _ := m.STUNStats(); return a == 2 }, 5*time.Second, time.Millisecond)
	answered, dropped := m.STUNStats()
	require.EqualValues(t, 2, answered)
	require.EqualValues(t, 2, dropped)
	require.Nil(t, m.mux.Load(), "plain STUN made the ICE mux, which only agents need")
}

// TestRelayCredentials: a TURN client allocates on a Relay (real pion/turn
// on loopback) with the credentials the relay hands out, is refused with a
// wrong password or an expired username, and relays a datagram.
func TestRelayCredentials(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	r, err := NewRelay(RelayConfig{PacketConn: pc})
	require.NoError(t, err)
	defer r.Close()

	allocate := func(user, pass string) (net.PacketConn, func(), error) {
		cc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		require.NoError(t, err)
		cl, err := turn.NewClient(&turn.ClientConfig{TURNServerAddr: r.Addr().String(),
			Username: user, Password: pass, Realm: Realm, Conn: cc, RTO: 100 * time.Millisecond})
		require.NoError(t, err)
		require.NoError(t, cl.Listen())
		relayed, err := cl.Allocate()
		return relayed, func() { cl.Close(); cc.Close() }, err
	}
	user, pass := r.Credentials(time.Hour)
	_, done, err := allocate(user, pass+"x")
	done()
	require.Error(t, err, "a wrong password is refused")
	old, oldPass := r.Credentials(-time.Minute)
	_, done, err = allocate(old, oldPass)
	done()
	require.Error(t, err, "expired credentials are refused")

	relayed, done, err := allocate(user, pass)
	require.NoError(t, err)
	defer done()
	require.Equal(t, 1, r.Allocations())

	peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer peer.Close()
	_, err = relayed.WriteTo([]byte("via relay"), peer.LocalAddr())
	require.NoError(t, err)
	peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	n, from, err := peer.ReadFrom(buf)
	require.NoError(t, err)
	require.Equal(t, "via relay", string(buf[:n]))
	require.Equal(t, relayed.LocalAddr().(*net.UDPAddr).Port, from.(*net.UDPAddr).Port)
}

// FuzzICEHandle feeds arbitrary packets in the STUN range to the ICE
// demultiplexer: nothing panics.
func FuzzICEHandle(f *testing.F) {
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	f.Add(req.Raw)
	withUser := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.NewUsername("a:b"), stun.Fingerprint)
	f.Add(withUser.Raw)
	f.Add([]byte{0x01, 0x01, 0, 0})
	s, err := Listen("127.0.0.1:0")
	require.NoError(f, err)
	m := NewICE(s, nil, nil)
	defer s.Close()
	defer m.Close()
	from := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9} // discard port
	f.Fuzz(func(t *testing.T, pkt []byte) {
		if len(pkt) == 0 || pkt[0] > 0x03 {
			return
		}
		m.handle(pkt, from)
	})
}
