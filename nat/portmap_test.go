package nat

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestParseRouteLine: the default route's gateway is read from
// /proc/net/route (little-endian hex); other routes, and a default route
// without a gateway, give none.
func TestParseRouteLine(t *testing.T) {
	gw, ok := parseRouteLine("eth0\t00000000\t0101630A\t0003\t0\t0\t0\t00000000\t0\t0\t0")
	require.True(t, ok)
	require.Equal(t, netip.MustParseAddr("10.99.1.1"), gw)
	_, ok = parseRouteLine("eth0\t0001630A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0")
	require.False(t, ok, "not a default route")
	_, ok = parseRouteLine("tun0\t00000000\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0")
	require.False(t, ok, "no gateway")
	_, ok = parseRouteLine("Iface\tDestination\tGateway")
	require.False(t, ok)
}
