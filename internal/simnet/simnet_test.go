package simnet

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
)

// waitTimeout bounds every wait for a datagram that must arrive. Waits that
// succeed return as soon as the datagram is there, so it only matters for
// failing tests.
const waitTimeout = 2 * time.Second

var allKinds = []Kind{Public, FullCone, Restricted, PortRestricted, Symmetric}

func newNetwork(t testing.TB) *Network {
	t.Helper()
	n, err := New()
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, n.Close()) })
	return n
}

func addHost(t testing.TB, n *Network, kind Kind) *Host {
	t.Helper()
	h, err := n.AddHost(kind)
	require.NoError(t, err)
	return h
}

func listen(t testing.TB, h *Host) net.PacketConn {
	t.Helper()
	pc, err := h.ListenUDP(0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = pc.Close() })
	return pc
}

func send(t testing.TB, pc net.PacketConn, to net.Addr, msg string) {
	t.Helper()
	_, err := pc.WriteTo([]byte(msg), to)
	require.NoError(t, err)
}

// recv waits for the next datagram on pc and returns it with its source.
func recv(t testing.TB, pc net.PacketConn) (string, *net.UDPAddr) {
	t.Helper()
	require.NoError(t, pc.SetReadDeadline(time.Now().Add(waitTimeout)))
	buf := make([]byte, 64<<10)
	n, from, err := pc.ReadFrom(buf)
	require.NoError(t, err)
	return string(buf[:n]), from.(*net.UDPAddr)
}

// recvUntil reads datagrams until sentinel arrives and returns the ones
// that arrived before it, in order.
func recvUntil(t testing.TB, pc net.PacketConn, sentinel string) []string {
	t.Helper()
	var got []string
	for {
		msg, _ := recv(t, pc)
		if msg == sentinel {
			return got
		}
		got = append(got, msg)
	}
}

func udpAddr(pc net.PacketConn) *net.UDPAddr { return pc.LocalAddr().(*net.UDPAddr) }

func TestVnetKindString(t *testing.T) {
	want := []string{"public", "fullcone", "restricted", "portrestricted", "symmetric"}
	for i, k := range allKinds {
		require.Equal(t, want[i], k.String())
	}
	require.Equal(t, "Kind(9)", Kind(9).String())
}

func TestVnetAddressing(t *testing.T) {
	n := newNetwork(t)
	_, wan, err := net.ParseCIDR(WANCIDR)
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, kind := range allKinds {
		h := addHost(t, n, kind)
		require.Equal(t, kind, h.Kind())
		require.True(t, wan.Contains(h.PublicIP()), "public IP %v", h.PublicIP())
		require.False(t, seen[h.PublicIP().String()], "duplicate public IP %v", h.PublicIP())
		seen[h.PublicIP().String()] = true
		if kind == Public {
			require.True(t, h.IP().Equal(h.PublicIP()))
		} else {
			require.True(t, h.IP().IsPrivate(), "private IP %v", h.IP())
			require.False(t, h.IP().Equal(h.PublicIP()))
		}
		pc := listen(t, h)
		require.True(t, udpAddr(pc).IP.Equal(h.IP()))
		require.NotZero(t, udpAddr(pc).Port)
	}
	_, err = n.AddHost(Kind(42))
	require.Error(t, err)
}

func TestVnetListenUDPFixedPort(t *testing.T) {
	n := newNetwork(t)
	h := addHost(t, n, PortRestricted)
	pc, err := h.ListenUDP(4242)
	require.NoError(t, err)
	require.Equal(t, 4242, udpAddr(pc).Port)
	_, err = h.ListenUDP(4242)
	require.Error(t, err, "port already in use")
	require.NoError(t, pc.Close())
	pc, err = h.ListenUDP(4242)
	require.NoError(t, err, "port is free again after Close")
	require.NoError(t, pc.Close())
	_, err = h.ListenUDP(70000)
	require.Error(t, err)
}

// TestVnetAddHostWhileRunning adds hosts to a network that is already
// carrying traffic and checks the new ones take part.
func TestVnetAddHostWhileRunning(t *testing.T) {
	n := newNetwork(t)
	hub := listen(t, addHost(t, n, Public))
	for round := 0; round < 3; round++ {
		for _, kind := range allKinds {
			pc := listen(t, addHost(t, n, kind))
			msg := fmt.Sprintf("round %d %v", round, kind)
			send(t, pc, hub.LocalAddr(), msg)
			got, from := recv(t, hub)
			require.Equal(t, msg, got)
			send(t, hub, from, "echo "+msg)
			got, _ = recv(t, pc)
			require.Equal(t, "echo "+msg, got)
		}
	}
}

// TestVnetNATMapping checks which external ip:port a host's socket gets
// toward two different public hosts.
func TestVnetNATMapping(t *testing.T) {
	for _, kind := range allKinds {
		t.Run(kind.String(), func(t *testing.T) {
			n := newNetwork(t)
			h := addHost(t, n, kind)
			hc := listen(t, h)
			c1 := listen(t, addHost(t, n, Public))
			c2 := listen(t, addHost(t, n, Public))

			send(t, hc, c1.LocalAddr(), "a")
			_, m1 := recv(t, c1)
			send(t, hc, c2.LocalAddr(), "b")
			_, m2 := recv(t, c2)
			send(t, hc, c1.LocalAddr(), "c")
			_, m1again := recv(t, c1)

			require.True(t, m1.IP.Equal(h.PublicIP()), "mapped IP %v", m1.IP)
			require.True(t, m2.IP.Equal(h.PublicIP()), "mapped IP %v", m2.IP)
			require.Equal(t, m1.String(), m1again.String(), "mapping toward the same destination is reused")
			switch kind {
			case Public:
				require.Equal(t, udpAddr(hc).String(), m1.String(), "no translation")
				require.Equal(t, m1.String(), m2.String())
			case Symmetric:
				require.NotEqual(t, m1.Port, m2.Port, "symmetric NAT maps each destination to its own port")
				// vnet hands out external ports sequentially from 49152,
				// so the next one is predictable.
				require.Equal(t, m1.Port+1, m2.Port)
			default:
				require.Equal(t, m1.String(), m2.String(), "endpoint-independent mapping")
			}
			if kind != Public {
				require.Equal(t, 49152, m1.Port, "the first mapping of a NAT")
			}
		})
	}
}

// TestVnetNATFiltering checks who may send to a host's mapped address after
// the host has sent to public host P1 on port1: P1 from another port, and
// another public host P2. Both probes are followed by a sentinel from
// P1:port1, which always passes; all three travel the same FIFO path through
// the WAN router and the NAT, so a probe that did not arrive before the
// sentinel was dropped.
func TestVnetNATFiltering(t *testing.T) {
	tests := []struct {
		kind                     Kind
		fromOtherPort, fromOther bool
	}{
		{Public, true, true},
		{FullCone, true, true},
		{Restricted, true, false},
		{PortRestricted, false, false},
		{Symmetric, false, false},
	}
	for _, tc := range tests {
		name := fmt.Sprintf("%v/otherPort=%v/otherHost=%v", tc.kind, tc.fromOtherPort, tc.fromOther)
		t.Run(name, func(t *testing.T) {
			n := newNetwork(t)
			hc := listen(t, addHost(t, n, tc.kind))
			p1 := addHost(t, n, Public)
			p1a, p1b := listen(t, p1), listen(t, p1)
			p2 := listen(t, addHost(t, n, Public))

			send(t, hc, p1a.LocalAddr(), "open")
			_, mapped := recv(t, p1a)

			send(t, p1b, mapped, "from P1 other port")
			send(t, p2, mapped, "from P2")
			send(t, p1a, mapped, "sentinel")

			var want []string
			if tc.fromOtherPort {
				want = append(want, "from P1 other port")
			}
			if tc.fromOther {
				want = append(want, "from P2")
			}
			require.Equal(t, want, recvUntil(t, hc, "sentinel"))
		})
	}
}

func TestVnetFullConeAcceptsUnsolicited(t *testing.T) {
	n := newNetwork(t)
	hc := listen(t, addHost(t, n, FullCone))
	stun := listen(t, addHost(t, n, Public))
	stranger := listen(t, addHost(t, n, Public))

	send(t, hc, stun.LocalAddr(), "binding request")
	_, mapped := recv(t, stun)
	send(t, stranger, mapped, "unsolicited")
	got, from := recv(t, hc)
	require.Equal(t, "unsolicited", got)
	require.Equal(t, udpAddr(stranger).String(), from.String())
}

// rendezvous has a and b each send to a public server and returns the mapped
// addresses the server saw, as a STUN server would report them.
func rendezvous(t *testing.T, server, a, b net.PacketConn) (ma, mb *net.UDPAddr) {
	t.Helper()
	send(t, a, server.LocalAddr(), "a")
	send(t, b, server.LocalAddr(), "b")
	for i := 0; i < 2; i++ {
		msg, from := recv(t, server)
		switch msg {
		case "a":
			ma = from
		case "b":
			mb = from
		}
	}
	require.NotNil(t, ma)
	require.NotNil(t, mb)
	return ma, mb
}

// TestVnetHolePunchPortRestricted punches a hole between two port-restricted
// hosts. The first packet is dropped by the peer's NAT (it has not sent to
// us yet) but opens our own NAT; after that both directions work.
func TestVnetHolePunchPortRestricted(t *testing.T) {
	n := newNetwork(t)
	server := listen(t, addHost(t, n, Public))
	a := listen(t, addHost(t, n, PortRestricted))
	b := listen(t, addHost(t, n, PortRestricted))
	ma, mb := rendezvous(t, server, a, b)

	send(t, a, mb, "a1 (dropped by B's NAT)")
	// Barrier: once the server has this, a1 has passed the WAN router.
	send(t, a, server.LocalAddr(), "barrier")
	msg, _ := recv(t, server)
	require.Equal(t, "barrier", msg)

	send(t, b, ma, "b1")
	msg, from := recv(t, a)
	require.Equal(t, "b1", msg)
	require.Equal(t, mb.String(), from.String())

	send(t, a, mb, "a2")
	msg, from = recv(t, b)
	require.Equal(t, "a2", msg, "a1 must have been dropped, a2 must arrive")
	require.Equal(t, ma.String(), from.String())
}

// TestVnetHolePunchSymmetricToPortRestrictedFails shows that hole punching
// cannot connect a symmetric host with a port-restricted one: the symmetric
// NAT uses a new external port toward the peer, which the peer's NAT does
// not accept, and it accepts nothing on the port the peer learnt.
func TestVnetHolePunchSymmetricToPortRestrictedFails(t *testing.T) {
	n := newNetwork(t)
	server := listen(t, addHost(t, n, Public))
	s := listen(t, addHost(t, n, Symmetric))
	r := listen(t, addHost(t, n, PortRestricted))
	ms, mr := rendezvous(t, server, s, r)

	for i := 0; i < 3; i++ {
		send(t, s, mr, fmt.Sprintf("s%d", i))
		send(t, r, ms, fmt.Sprintf("r%d", i))
	}
	// Barriers: once the server has these, every punch has passed the WAN
	// router and been delivered to (or dropped by) the peer's NAT.
	send(t, s, server.LocalAddr(), "barrier")
	send(t, r, server.LocalAddr(), "barrier")
	recv(t, server)
	recv(t, server)
	// The server may reach both: each has sent to it.
	send(t, server, ms, "sentinel")
	send(t, server, mr, "sentinel")
	require.Empty(t, recvUntil(t, s, "sentinel"), "symmetric host received a punch")
	require.Empty(t, recvUntil(t, r, "sentinel"), "port-restricted host received a punch")
}

func TestVnetDatagramSizes(t *testing.T) {
	n := newNetwork(t)
	h := listen(t, addHost(t, n, PortRestricted))
	p := listen(t, addHost(t, n, Public))
	// 1280 is what the overlay sends; vnet enforces no MTU, so even the
	// largest IPv4 UDP payload passes, unfragmented and whole.
	for _, size := range []int{1, 1200, 1280, 1500, 9000, 65507} {
		payload := make([]byte, size)
		_, _ = rand.Read(payload)

		_, err := h.WriteTo(payload, p.LocalAddr())
		require.NoError(t, err)
		got, from := recv(t, p)
		require.Equal(t, string(payload), got, "size %d outbound", size)

		_, err = p.WriteTo(payload, from)
		require.NoError(t, err)
		got, _ = recv(t, h)
		require.Equal(t, string(payload), got, "size %d inbound", size)
	}
}

// TestVnetShortReadTruncates checks that, like a real UDP socket, a read
// into a small buffer returns the start of the datagram without an error.
func TestVnetShortReadTruncates(t *testing.T) {
	n := newNetwork(t)
	a := listen(t, addHost(t, n, Public))
	b := listen(t, addHost(t, n, Public))
	send(t, a, b.LocalAddr(), "0123456789")
	require.NoError(t, b.SetReadDeadline(time.Now().Add(waitTimeout)))
	buf := make([]byte, 4)
	nr, _, err := b.ReadFrom(buf)
	require.NoError(t, err)
	require.Equal(t, "0123", string(buf[:nr]))
}

func TestVnetReadDeadline(t *testing.T) {
	n := newNetwork(t)
	pc := listen(t, addHost(t, n, Symmetric))
	buf := make([]byte, 16)

	// A past deadline fails every read at once, not just the first.
	require.NoError(t, pc.SetReadDeadline(time.Now().Add(-time.Second)))
	for i := 0; i < 3; i++ {
		start := time.Now()
		_, _, err := pc.ReadFrom(buf)
		require.ErrorIs(t, err, os.ErrDeadlineExceeded)
		var ne net.Error
		require.ErrorAs(t, err, &ne)
		require.True(t, ne.Timeout())
		require.Less(t, time.Since(start), 100*time.Millisecond)
	}

	// A deadline set while a read is blocked unblocks it.
	require.NoError(t, pc.SetReadDeadline(time.Time{}))
	done := make(chan error, 1)
	go func() {
		_, _, err := pc.ReadFrom(buf)
		done <- err
	}()
	require.NoError(t, pc.SetReadDeadline(time.Now().Add(20*time.Millisecond)))
	select {
	case err := <-done:
		require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	case <-time.After(waitTimeout):
		t.Fatal("read did not honour the deadline")
	}

	// Clearing the deadline makes the socket usable again.
	require.NoError(t, pc.SetReadDeadline(time.Time{}))
	peer := listen(t, addHost(t, n, Public))
	send(t, pc, peer.LocalAddr(), "hi")
	_, from := recv(t, peer)
	send(t, peer, from, "back")
	msg, _ := recv(t, pc)
	require.Equal(t, "back", msg)
}

func TestVnetSocketClose(t *testing.T) {
	n := newNetwork(t)
	h := addHost(t, n, Public)
	pc, err := h.ListenUDP(0)
	require.NoError(t, err)

	done := make(chan error, 1)
	go func() {
		_, _, err := pc.ReadFrom(make([]byte, 16))
		done <- err
	}()
	require.NoError(t, pc.Close())
	select {
	case err := <-done:
		require.ErrorIs(t, err, net.ErrClosed)
	case <-time.After(waitTimeout):
		t.Fatal("Close did not unblock ReadFrom")
	}
	_, err = pc.WriteTo([]byte("x"), &net.UDPAddr{IP: h.IP(), Port: 1})
	require.ErrorIs(t, err, net.ErrClosed)
	require.ErrorIs(t, pc.Close(), net.ErrClosed)
}

func TestVnetNetworkClose(t *testing.T) {
	n, err := New()
	require.NoError(t, err)
	h := addHost(t, n, Restricted)
	pc, err := h.ListenUDP(0)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		_, _, err := pc.ReadFrom(make([]byte, 16))
		done <- err
	}()

	require.NoError(t, n.Close())
	require.NoError(t, n.Close(), "Close is idempotent")
	select {
	case err := <-done:
		require.ErrorIs(t, err, net.ErrClosed)
	case <-time.After(waitTimeout):
		t.Fatal("Network.Close did not unblock ReadFrom")
	}
	_, err = n.AddHost(Public)
	require.ErrorIs(t, err, ErrClosed)
	_, err = h.ListenUDP(0)
	require.ErrorIs(t, err, ErrClosed)
}

// TestVnetReadQueueDropsWhenFull documents that routers queue without limit
// but each socket holds at most 1024 unread datagrams; the rest are dropped.
func TestVnetReadQueueDropsWhenFull(t *testing.T) {
	n := newNetwork(t)
	src := listen(t, addHost(t, n, Public))
	dst := addHost(t, n, FullCone)
	sink, marker := listen(t, dst), listen(t, dst)
	send(t, sink, src.LocalAddr(), "open")
	_, sinkMapped := recv(t, src)
	send(t, marker, src.LocalAddr(), "open")
	_, markerMapped := recv(t, src)

	const sent = 3000
	for i := 0; i < sent; i++ {
		send(t, src, sinkMapped, "x")
	}
	// The marker follows the same path, so once it is read every earlier
	// datagram has been queued on sink or dropped.
	send(t, src, markerMapped, "marker")
	msg, _ := recv(t, marker)
	require.Equal(t, "marker", msg)

	got := 0
	buf := make([]byte, 16)
	require.NoError(t, sink.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
	for {
		if _, _, err := sink.ReadFrom(buf); err != nil {
			require.ErrorIs(t, err, os.ErrDeadlineExceeded)
			break
		}
		got++
	}
	require.Equal(t, 1024, got)
}

// TestVnetHundredHosts measures creating 100 hosts of mixed kinds and an
// echo exchange between each of them and a public hub.
func TestVnetHundredHosts(t *testing.T) {
	const hosts = 100
	n := newNetwork(t)
	hub := listen(t, addHost(t, n, Public))

	start := time.Now()
	conns := make([]net.PacketConn, hosts)
	for i := range conns {
		conns[i] = listen(t, addHost(t, n, allKinds[i%len(allKinds)]))
	}
	created := time.Since(start)

	start = time.Now()
	for i, pc := range conns {
		send(t, pc, hub.LocalAddr(), fmt.Sprint(i))
	}
	for range conns {
		msg, from := recv(t, hub)
		send(t, hub, from, msg)
	}
	for i, pc := range conns {
		msg, _ := recv(t, pc)
		require.Equal(t, fmt.Sprint(i), msg)
	}
	exchanged := time.Since(start)

	// Every public and full-cone host can now be reached by every other
	// host: send one datagram along each such ordered pair.
	start = time.Now()
	var open []int
	for i := range conns {
		if k := allKinds[i%len(allKinds)]; k == Public || k == FullCone {
			open = append(open, i)
		}
	}
	mapped := make(map[int]net.Addr)
	for _, i := range open {
		send(t, conns[i], hub.LocalAddr(), "where am I")
		_, from := recv(t, hub)
		mapped[i] = from
	}
	pairs := 0
	for i := range conns {
		for _, j := range open {
			if i != j {
				send(t, conns[i], mapped[j], "p")
				pairs++
			}
		}
	}
	buf := make([]byte, 16)
	for _, j := range open {
		require.NoError(t, conns[j].SetReadDeadline(time.Now().Add(waitTimeout)))
		for k := 0; k < hosts-1; k++ {
			nr, _, err := conns[j].ReadFrom(buf)
			require.NoError(t, err)
			require.Equal(t, "p", string(buf[:nr]))
		}
	}
	mesh := time.Since(start)
	t.Logf("created %d hosts in %v (%v each); hub echo with all in %v; %d one-way datagrams between host pairs in %v",
		hosts, created, created/hosts, exchanged, pairs, mesh)
}

// BenchmarkVnetRoundTrip measures one request/response between a NATed
// host and a public host: 6 router hops and 4 NAT translations.
func BenchmarkVnetRoundTrip(b *testing.B) {
	n := newNetwork(b)
	c := listen(b, addHost(b, n, PortRestricted))
	s := listen(b, addHost(b, n, Public))
	payload := make([]byte, 1280)
	buf := make([]byte, 2048)
	for b.Loop() {
		if _, err := c.WriteTo(payload, s.LocalAddr()); err != nil {
			b.Fatal(err)
		}
		_, from, err := s.ReadFrom(buf)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.WriteTo(payload, from); err != nil {
			b.Fatal(err)
		}
		if _, _, err := c.ReadFrom(buf); err != nil {
			b.Fatal(err)
		}
	}
}

type nonQUICResult struct {
	data []byte
	addr net.Addr
	err  error
}

func readNonQUIC(ctx context.Context, tr *quic.Transport) <-chan nonQUICResult {
	ch := make(chan nonQUICResult, 1)
	go func() {
		buf := make([]byte, 1500)
		n, addr, err := tr.ReadNonQUICPacket(ctx, buf)
		ch <- nonQUICResult{buf[:n], addr, err}
	}()
	return ch
}

// deliverNonQUIC writes payload until the reader started with readNonQUIC
// reports it. Retrying is needed because a Transport discards non-QUIC
// packets that arrive before its first ReadNonQUICPacket call.
func deliverNonQUIC(t *testing.T, ctx context.Context, tr *quic.Transport, to net.Addr, payload []byte, got <-chan nonQUICResult) nonQUICResult {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		_, err := tr.WriteTo(payload, to)
		require.NoError(t, err)
		select {
		case r := <-got:
			require.NoError(t, r.err)
			return r
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal("non-QUIC packet not delivered")
		}
	}
}

func TestVnetQUICTransportNonQUICPacket(t *testing.T) {
	n := newNetwork(t)
	ha, hb := addHost(t, n, PortRestricted), addHost(t, n, Public)
	pa, pb := listen(t, ha), listen(t, hb)
	tra, trb := &quic.Transport{Conn: pa}, &quic.Transport{Conn: pb}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()

	ping := append([]byte{0x21}, "ping"...)
	r := deliverNonQUIC(t, ctx, tra, pb.LocalAddr(), ping, readNonQUIC(ctx, trb))
	require.Equal(t, ping, r.data)
	require.True(t, r.addr.(*net.UDPAddr).IP.Equal(ha.PublicIP()))

	pong := append([]byte{0x21}, "pong"...)
	r = deliverNonQUIC(t, ctx, trb, r.addr, pong, readNonQUIC(ctx, tra))
	require.Equal(t, pong, r.data)
	require.Equal(t, udpAddr(pb).String(), r.addr.String())

	for _, tr := range []*quic.Transport{tra, trb} {
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- tr.Close() }()
		select {
		case err := <-done:
			require.NoError(t, err)
			t.Logf("Transport.Close took %v", time.Since(start))
		case <-time.After(waitTimeout):
			t.Fatal("Transport.Close hangs")
		}
	}

	// quic-go leaves a PacketConn it did not create open, with its read
	// deadline cleared; it must still work.
	send(t, pa, pb.LocalAddr(), "after close")
	msg, _ := recv(t, pb)
	require.Equal(t, "after close", msg)
}

// TestVnetQUICHandshake runs a full QUIC handshake and a stream echo from a
// NATed client to a public server over simnet sockets.
func TestVnetQUICHandshake(t *testing.T) {
	n := newNetwork(t)
	server := &quic.Transport{Conn: listen(t, addHost(t, n, Public))}
	client := &quic.Transport{Conn: listen(t, addHost(t, n, Symmetric))}
	defer server.Close()
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()

	serverTLS, clientTLS := testnet.SelfSignedTLS(t, "simnet-test")
	ln, err := server.Listen(serverTLS, nil)
	require.NoError(t, err)
	echoed := make(chan error, 1)
	go func() {
		echoed <- func() error {
			conn, err := ln.Accept(ctx)
			if err != nil {
				return err
			}
			str, err := conn.AcceptStream(ctx)
			if err != nil {
				return err
			}
			_, err = io.Copy(str, str)
			if err != nil {
				return err
			}
			return str.Close()
		}()
	}()

	start := time.Now()
	conn, err := client.Dial(ctx, server.Conn.LocalAddr(),
		clientTLS, nil)
	require.NoError(t, err)
	handshake := time.Since(start)
	str, err := conn.OpenStreamSync(ctx)
	require.NoError(t, err)
	msg := make([]byte, 100_000)
	_, _ = rand.Read(msg)
	go func() {
		_, _ = str.Write(msg)
		_ = str.Close()
	}()
	got, err := io.ReadAll(str)
	require.NoError(t, err)
	require.Equal(t, msg, got)
	require.NoError(t, <-echoed)
	t.Logf("QUIC handshake %v, 100 kB echo done after %v", handshake, time.Since(start))
	require.NoError(t, conn.CloseWithError(0, ""))
	require.NoError(t, ln.Close())
}
