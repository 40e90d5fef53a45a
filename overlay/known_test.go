package overlay

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestKnownAddrs: the packed set behind Known finds exactly the addresses
// added, IPv4 and IPv6, whatever their order and repeats.
func TestKnownAddrs(t *testing.T) {
	in := []string{"127.0.0.2:4000", "10.1.2.3:9", "[::1]:4000", "127.0.0.2:4000", "255.255.255.255:65535", "[2001:db8::1]:1", "0.0.0.1:0"}
	var k knownAddrs
	for _, a := range in {
		k.add(netip.MustParseAddrPort(a))
	}
	k.sort()
	require.Len(t, k.v4, 4, "duplicates dropped")
	for _, a := range in {
		require.True(t, k.has(netip.MustParseAddrPort(a)), a)
	}
	for _, a := range []string{"127.0.0.2:4001", "127.0.0.3:4000", "[::1]:4001", "[::2]:4000", "10.1.2.3:0", "0.0.0.0:1"} {
		require.False(t, k.has(netip.MustParseAddrPort(a)), a)
	}
	var empty knownAddrs
	empty.sort()
	require.False(t, empty.has(netip.MustParseAddrPort("127.0.0.1:1")))
}
