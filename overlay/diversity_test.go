package overlay_test

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/overlay"
)

func TestSubnet(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.7":        "203.0.113.0/24",
		"::ffff:203.0.113.7": "203.0.113.0/24",
		"2001:db8:1:2::5":    "2001:db8:1::/48",
		"127.0.0.5":          "127.0.0.5/32",
		"10.1.2.3":           "10.1.2.3/32",
		"192.168.1.20":       "192.168.1.20/32",
		"::1":                "::1/128",
		"fe80::1%eth0":       "fe80::1/128",
		"fd00:1:2::3":        "fd00:1:2::3/128",
	} {
		require.Equal(t, want, overlay.Subnet(netip.MustParseAddr(in)).String(), in)
	}
	require.False(t, overlay.Subnet(netip.Addr{}).IsValid())
}

func TestDiverse(t *testing.T) {
	addrs := []string{"198.51.100.1", "198.51.100.2", "198.51.100.3", "", "203.0.113.1", "198.51.100.4", "127.0.0.1", "127.0.0.2"}
	addr := func(s string) netip.Addr {
		a, _ := netip.ParseAddr(s)
		return a
	}
	require.Equal(t, []string{"198.51.100.1", "", "203.0.113.1", "127.0.0.1", "127.0.0.2"}, overlay.Diverse(addrs, addr, 1, -1))
	require.Equal(t, []string{"198.51.100.1", "198.51.100.2", ""}, overlay.Diverse(addrs, addr, 2, 3))
	require.Empty(t, overlay.Diverse(addrs, addr, 1, 0))
}

func TestDiverseFill(t *testing.T) {
	a := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	items := []netip.Addr{a("192.0.2.1"), a("192.0.2.2"), a("198.51.100.1"), a("192.0.2.3")}
	id := func(x netip.Addr) netip.Addr { return x }
	// Enough subnets: no fill.
	require.Equal(t, []netip.Addr{a("192.0.2.1"), a("198.51.100.1")}, overlay.DiverseFill(items, id, 1, 2))
	// Too few: one per subnet first, then the others in order.
	require.Equal(t, []netip.Addr{a("192.0.2.1"), a("198.51.100.1"), a("192.0.2.2")}, overlay.DiverseFill(items, id, 1, 3))
	require.Equal(t, []netip.Addr{a("192.0.2.1"), a("198.51.100.1"), a("192.0.2.2"), a("192.0.2.3")}, overlay.DiverseFill(items, id, 1, 10))
}
