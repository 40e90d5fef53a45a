package nat

import (
	"net"
	"net/netip"
	"testing"

	"github.com/pion/ice/v2"
	"github.com/pion/transport/v2/stdnet"
	"github.com/stretchr/testify/require"
)

// hostFamilies returns the address families of the host candidates a node
// on addr offers.
func hostFamilies(t *testing.T, addr string) (v4, v6 bool) {
	t.Helper()
	s, err := Listen(addr)
	require.NoError(t, err)
	defer s.Close()
	nw, err := stdnet.NewNet()
	require.NoError(t, err)
	m := NewICE(s, nw, nil)
	defer m.Close()
	for _, c := range m.HostCandidates() {
		cand, err := ice.UnmarshalCandidate(c)
		require.NoError(t, err)
		ip := netip.MustParseAddr(cand.Address())
		v4, v6 = v4 || ip.Is4(), v6 || ip.Is6()
	}
	return v4, v6
}

// TestHostCandidateFamiliesLoopback6: a node on all interfaces (":0",
// "[::]:0") offers host candidates of both families where the host has
// addresses of both; one on "0.0.0.0:0" is IPv4 only, one on "[::1]:0"
// IPv6 only. No packet is sent.
func TestHostCandidateFamiliesLoopback6(t *testing.T) {
	c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	c.Close()
	has := map[bool]bool{}
	addrs, err := net.InterfaceAddrs()
	require.NoError(t, err)
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(ipn.IP); ok && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() {
				has[ip.Unmap().Is6()] = true
			}
		}
	}
	for name, addr := range map[string]string{"any": ":0", "any6": "[::]:0"} {
		t.Run(name, func(t *testing.T) {
			if !has[true] {
				t.Skip("the host has no IPv6 address besides loopback and link-local ones")
			}
			v4, v6 := hostFamilies(t, addr)
			require.True(t, v6, "IPv6 host candidates")
			require.True(t, v4, "IPv4 host candidates")
		})
	}
	t.Run("0.0.0.0", func(t *testing.T) {
		v4, v6 := hostFamilies(t, "0.0.0.0:0")
		require.True(t, v4)
		require.False(t, v6)
	})
	t.Run("::1", func(t *testing.T) {
		v4, v6 := hostFamilies(t, "[::1]:0")
		require.False(t, v4)
		require.True(t, v6)
	})
}
