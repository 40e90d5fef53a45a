package overlay

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/wire"
)

// TestObservedPerFamily: a dual-stack node seen at its own IPv6 address and
// at an IPv4 address of a NAT is public over IPv6 only (its Pings and Pongs
// say so per family); contacts alternating between the families do not make
// it look symmetric, two ports on one IPv4 address do; every address seen is
// kept, the latest last, at most maxSeenAt.
func TestObservedPerFamily(t *testing.T) {
	own6 := netip.MustParseAddr("2001:db8::5")
	o := &Overlay{local: netip.MustParseAddrPort("[::]:4000"), localIPs: []netip.Addr{own6}}
	v6 := netip.AddrPortFrom(own6, 4000)
	nat1 := netip.MustParseAddrPort("198.51.100.7:61000")
	for _, a := range []netip.AddrPort{nat1, v6, nat1, v6} {
		o.noteObservedLocked(a)
	}
	require.False(t, o.symmetric)
	require.True(t, o.public)
	require.Equal(t, wire.FlagPublic, o.myFlags(path{addr: netip.MustParseAddrPort("[2001:db8:1::9]:4000")}))
	require.Zero(t, o.myFlags(path{addr: netip.MustParseAddrPort("203.0.113.9:4000")}))
	require.Equal(t, []netip.AddrPort{nat1, v6}, o.seenAt)

	nat2 := netip.MustParseAddrPort("198.51.100.7:61001")
	o.noteObservedLocked(nat2)
	require.True(t, o.symmetric, "two ports on one IPv4 address")
	require.Equal(t, []netip.AddrPort{nat1, v6, nat2}, o.seenAt)
	for i := range 2 * maxSeenAt {
		o.noteObservedLocked(netip.AddrPortFrom(nat1.Addr(), uint16(1000+i)))
	}
	require.Len(t, o.seenAt, maxSeenAt)
}
