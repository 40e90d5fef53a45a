package overlay

import (
	"net/netip"
	"testing"
	"time"

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

// TestObservedWiderScopeWins: a node behind a NAT, seen at the NAT's address
// by a node on the Internet, is also seen at its own LAN and loopback
// addresses by nodes on its LAN and machine. Those views must not make it
// public nor replace its observed address (nor hide a symmetric NAT between
// two Internet views) while the Internet's view is fresh; once that is
// stale, they count. A node that only LAN nodes see goes by them.
func TestObservedWiderScopeWins(t *testing.T) {
	lanIP := netip.MustParseAddr("10.99.1.2")
	o := &Overlay{local: netip.MustParseAddrPort("0.0.0.0:40284"), localIPs: []netip.Addr{lanIP, netip.MustParseAddr("127.0.0.1")}}
	wan := netip.MustParseAddrPort("100.64.1.2:40284")
	lan := netip.AddrPortFrom(lanIP, 40284)
	loop := netip.MustParseAddrPort("127.0.0.1:40284")
	o.noteObservedLocked(wan)
	for _, a := range []netip.AddrPort{lan, loop, lan} {
		o.noteObservedLocked(a)
		require.False(t, o.public, "seen at %v", a)
		require.Equal(t, wan, o.observed, "seen at %v", a)
		require.Zero(t, o.myFlags(path{addr: netip.MustParseAddrPort("100.64.11.2:4000")}))
	}
	require.Equal(t, []netip.AddrPort{wan}, o.seenAt)
	o.noteObservedLocked(netip.MustParseAddrPort("100.64.1.2:50001"))
	require.True(t, o.symmetric, "two ports on the NAT's address, a LAN view between them")

	// The Internet's view is stale: the LAN's counts.
	o.observedAt[0] = time.Now().Add(-o.observedWiderTTL())
	o.noteObservedLocked(lan)
	require.True(t, o.public)
	require.Equal(t, lan, o.observed)

	only := &Overlay{local: netip.MustParseAddrPort("0.0.0.0:4000"), localIPs: []netip.Addr{lanIP}}
	only.noteObservedLocked(netip.AddrPortFrom(lanIP, 4000))
	require.True(t, only.public, "a LAN node seen by LAN nodes only")
}

// TestNamedNarrowAddressesUnnamed: a Nodes answer from a node reached over
// the Internet (directly, or relayed by a node on the Internet) names its
// LAN and loopback neighbours at addresses that lead elsewhere from here:
// they are cleared, and the lookups do not link to those nodes through
// this answer. From a node on this LAN or machine they are kept, and so is
// everything in a loopback network.
func TestNamedNarrowAddressesUnnamed(t *testing.T) {
	var relay ID
	relay[0] = 1
	o := &Overlay{tab: newTable(ID{}, 20, 0, 0)}
	o.tab.add(&contact{id: relay, p: path{addr: netip.MustParseAddrPort("100.64.11.2:4000")}})
	wan := netip.MustParseAddrPort("100.64.1.2:48287")
	lan := netip.MustParseAddrPort("10.99.1.2:48287")
	loop := netip.MustParseAddrPort("127.0.0.1:48287")
	mapped := netip.AddrPortFrom(netip.AddrFrom16(netip.MustParseAddr("127.0.0.1").As16()), 48287)
	named := func() []wire.Contact {
		return []wire.Contact{{Addr: wan}, {Addr: lan}, {Addr: loop}, {Addr: mapped}}
	}
	for _, tc := range []struct {
		name string
		p    path
		want []netip.AddrPort
	}{
		{"Internet", path{addr: netip.MustParseAddrPort("100.64.1.2:59116")}, []netip.AddrPort{wan, {}, {}, {}}},
		{"relayed by a node on the Internet", viaPath(relay), []netip.AddrPort{wan, {}, {}, {}}},
		{"relayed by a node with no direct path", viaPath(ID{2}), []netip.AddrPort{wan, lan, loop, mapped}},
		{"LAN", path{addr: netip.MustParseAddrPort("10.99.1.2:59116")}, []netip.AddrPort{wan, lan, {}, {}}},
		{"loopback", path{addr: netip.MustParseAddrPort("127.0.0.1:59116")}, []netip.AddrPort{wan, lan, loop, mapped}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nodes := named()
			o.unnameNarrowLocked(tc.p, nodes)
			for i, n := range nodes {
				require.Equal(t, tc.want[i], n.Addr, "contact %d", i)
				require.Equal(t, tc.want[i].IsValid(), usableNamed(n))
			}
		})
	}
}
