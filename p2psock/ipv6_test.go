package p2psock

import (
	"context"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// haveLoopback6 skips the test when the host has no ::1.
func haveLoopback6(t *testing.T) {
	t.Helper()
	c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	c.Close()
}

// TestNodesLoopback6: three nodes on [::1] join, exchange acknowledged
// messages both ways and a stream, and report IPv6 addresses.
func TestNodesLoopback6(t *testing.T) {
	haveLoopback6(t)
	tn := newEmptyNet(t)
	entry := tn.add(Config{ListenAddr: "[::1]:0"})
	var nodes []*Node
	for range 2 {
		nodes = append(nodes, tn.add(Config{ListenAddr: "[::1]:0", Bootstrap: []string{entry.UDPAddr().String()}, JoinOnly: true}))
	}
	a, b := nodes[0], nodes[1]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, n := range []*Node{entry, a, b} {
		require.True(t, netip.MustParseAddrPort(n.UDPAddr().String()).Addr().Is6(), "%s", n.UDPAddr())
	}
	require.NoError(t, a.SendTo(ctx, []byte("to b"), b.ID()))
	require.NoError(t, b.SendTo(ctx, []byte("to a"), a.ID()))
	ca, cb := connectPair(t, ctx, a, b)
	require.False(t, ca.Path().Relayed)
	go func() { ca.Write([]byte("over v6")); ca.CloseWrite() }()
	got, err := io.ReadAll(cb)
	require.NoError(t, err)
	require.Equal(t, "over v6", string(got))
	inf := a.Info()
	require.Equal(t, MappingNone, inf.NAT.Mapping)
	require.Equal(t, []netip.AddrPort{netip.MustParseAddrPort(a.UDPAddr().String())}, inf.NAT.PublicAddrs)
}

// TestMixedFamiliesLoopback6: a node on 127.0.0.1 and a node on [::1],
// joined through a dual-stack node ("[::]:0"), exchange messages both ways
// and a stream: they have no address family in common, so the stream is
// relayed by the dual-stack node on its one socket, and the bytes arrive.
func TestMixedFamiliesLoopback6(t *testing.T) {
	haveLoopback6(t)
	tn := newEmptyNet(t)
	entry := tn.add(Config{ListenAddr: "[::]:0"})
	port := uint16(entry.UDPAddr().Port)
	at := func(ip string) []string { return []string{netip.AddrPortFrom(netip.MustParseAddr(ip), port).String()} }
	a := tn.add(Config{ListenAddr: "127.0.0.1:0", Bootstrap: at("127.0.0.1"), JoinOnly: true})
	b := tn.add(Config{ListenAddr: "[::1]:0", Bootstrap: at("::1"), JoinOnly: true})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, a.SendTo(ctx, []byte("to b"), b.ID()))
	require.NoError(t, b.SendTo(ctx, []byte("to a"), a.ID()))
	ca, cb := connectPair(t, ctx, a, b)
	require.True(t, ca.Path().Relayed, "no common family: relayed")
	go func() { ca.Write([]byte("across families")); ca.CloseWrite() }()
	got, err := io.ReadAll(cb)
	require.NoError(t, err)
	require.Equal(t, "across families", string(got))
	// The dual-stack node was seen at an address of each family.
	fams := map[bool]bool{}
	for _, ap := range entry.Info().NAT.PublicAddrs {
		fams[ap.Addr().Is4()] = true
	}
	require.Len(t, fams, 2, "%v", entry.Info().NAT.PublicAddrs)
}
