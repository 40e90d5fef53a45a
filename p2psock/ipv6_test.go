package p2psock

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
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

// netns6Env is set in the test binary TestNetnsIPv6 runs inside the network
// namespace it made.
const netns6Env = "P2PSOCK_NETNS_IPV6"

// TestNetnsIPv6: in a network namespace of its own (made by the test, as
// root; skipped otherwise) with global IPv6 addresses and nothing else
// routed (2001:db8::1 and ::2 on one end of a veth pair, ::3 and ::4 on the
// other), nodes on those addresses join,
// exchange messages and a direct stream, and the filtering test finds the
// network open: the entry point sends its probes from another port and
// from its host's second address, as on a public IPv6 host.
func TestNetnsIPv6(t *testing.T) {
	if os.Getenv(netns6Env) != "" {
		netnsIPv6(t)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip")
	}
	ns := fmt.Sprintf("p2psock-v6-%d", os.Getpid())
	ip := func(args ...string) {
		t.Helper()
		out, err := exec.Command("ip", args...).CombinedOutput()
		require.NoError(t, err, "ip %v: %s", args, out)
	}
	ip("netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	ip("-n", ns, "link", "set", "lo", "up")
	ip("-n", ns, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
	for i := 1; i <= 4; i++ {
		dev := fmt.Sprintf("v%d", (i-1)/2)
		ip("-n", ns, "link", "set", dev, "up")
		ip("-n", ns, "-6", "addr", "add", fmt.Sprintf("2001:db8::%d/128", i), "dev", dev, "nodad")
	}
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run", "^TestNetnsIPv6$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), netns6Env+"=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "--- PASS: TestNetnsIPv6")
}

// netnsIPv6 is TestNetnsIPv6 inside its namespace.
func netnsIPv6(t *testing.T) {
	tn := newEmptyNet(t)
	entry := tn.add(Config{ListenAddr: "[2001:db8::1]:0"})
	join := []string{entry.UDPAddr().String()}
	a := tn.add(Config{ListenAddr: "[2001:db8::3]:0", Bootstrap: join, JoinOnly: true})
	b := tn.add(Config{ListenAddr: "[2001:db8::4]:0", Bootstrap: join, JoinOnly: true})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, a.SendTo(ctx, []byte("to b"), b.ID()))
	require.NoError(t, b.SendTo(ctx, []byte("to a"), a.ID()))
	ca, cb := connectPair(t, ctx, a, b)
	require.False(t, ca.Path().Relayed)
	require.Equal(t, b.UDPAddr().String(), ca.Path().Remote.String())
	go func() { ca.Write([]byte("over IPv6")); ca.CloseWrite() }()
	got, err := io.ReadAll(cb)
	require.NoError(t, err)
	require.Equal(t, "over IPv6", string(got))

	testnet.Eventually(t, 10*time.Second, "the entry point known as public", func() bool {
		for _, c := range a.ov.DirectContacts(8) {
			if c.Public {
				return true
			}
		}
		return false
	})
	inf, err := a.CheckNAT(ctx)
	require.NoError(t, err)
	require.Equal(t, FilteringIndependent, inf.Filtering)
	require.Equal(t, NATOpen, inf.Type)
	require.Equal(t, []netip.AddrPort{netip.MustParseAddrPort(a.UDPAddr().String())}, inf.PublicAddrs)
}
