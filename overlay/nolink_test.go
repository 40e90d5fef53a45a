package overlay

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/sim"
)

// simTransport carries a node's frames on a socket of the virtual network
// and hands it what the socket reads.
type simTransport struct{ c *sim.Conn }

func (s simTransport) WriteTo(b []byte, addr net.Addr) error {
	_, err := s.c.WriteTo(b, addr)
	return err
}

func (s simTransport) LocalAddr() net.Addr { return s.c.LocalAddr() }

// simNode is a node on host's port 4000 of the virtual network.
func simNode(t *testing.T, nw *sim.Network, host int) (*Overlay, netip.AddrPort) {
	t.Helper()
	return simNodeAt(t, nw, host, 4000, Config{}, nil)
}

// A link that failed at an address is not tried again there for a while,
// but a liar who names a node at a wrong address does not keep this node
// from linking to it at its right one (virtual network, synctest).
func TestVirtualNetworkFailedLinkIsPerAddress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := sim.New(3)
		a, _ := simNode(t, nw, 0)
		b, bAddr := simNode(t, nw, 1)
		ctx := context.Background()

		wrong := candidate{id: b.self, addr: netip.AddrPortFrom(sim.Host(2), 4000), public: true}
		start := time.Now()
		_, _, err := a.link(ctx, wrong)
		require.ErrorIs(t, err, errNoLink)
		require.Positive(t, time.Since(start), "the first link waits for an answer")
		a.mu.Lock()
		require.True(t, a.linkFailedLocked(wrong))
		a.mu.Unlock()
		start = time.Now()
		_, _, err = a.link(ctx, wrong)
		require.ErrorIs(t, err, errNoLink)
		require.Zero(t, time.Since(start), "a second link to the same address fails at once (virtual time)")

		p, _, err := a.link(ctx, candidate{id: b.self, addr: bAddr, public: true})
		require.NoError(t, err, "the node is reached at its right address")
		require.Equal(t, bAddr, p.addr)

		time.Sleep(noLinkTTL)
		a.mu.Lock()
		require.False(t, a.linkFailedLocked(wrong), "a failure is forgotten after noLinkTTL")
		a.mu.Unlock()
	})
}

// filteredTransport is a simTransport that drops what this node sends to
// the addresses in blocked (nil: none): a pair of nodes that no packet gets between
// directly, as between a symmetric NAT and a port-restricted one.
type filteredTransport struct {
	simTransport
	blocked map[netip.AddrPort]bool
}

func (f filteredTransport) WriteTo(b []byte, addr net.Addr) error {
	if f.blocked[addr.(*net.UDPAddr).AddrPort()] {
		return nil
	}
	return f.simTransport.WriteTo(b, addr)
}

// simNodeFiltered is simNode on a filteredTransport: it drops what it
// sends to the addresses in blocked (filled in by the caller).
func simNodeFiltered(t *testing.T, nw *sim.Network, host int, blocked map[netip.AddrPort]bool) (*Overlay, netip.AddrPort) {
	t.Helper()
	return simNodeAt(t, nw, host, 4000, Config{}, blocked)
}

// simNodeAt is simNodeFiltered at a port of the host, with cfg (its
// identity, network and difficulty set here).
func simNodeAt(t *testing.T, nw *sim.Network, host, port int, cfg Config, blocked map[netip.AddrPort]bool) (*Overlay, netip.AddrPort) {
	t.Helper()
	c, err := nw.Listen(host, port)
	require.NoError(t, err)
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	if cfg.Identity == nil {
		cfg.Identity = priv
	}
	cfg.Network, cfg.Difficulty = "nolink", -1
	o, err := New(cfg, filteredTransport{simTransport{c}, blocked})
	require.NoError(t, err)
	o.Start()
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			o.HandlePacket(buf[:n], from)
		}
	}()
	t.Cleanup(func() {
		o.Close()
		c.Close()
	})
	return o, c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// A link that failed without an introducer that can relay (the node was
// named by a contact this node reaches only through a relay itself, or by
// none) does not keep this node from linking through a contact that can
// relay, when one names the node a moment later: x and t exchange no
// packet directly, and reach each other through p only (virtual network,
// synctest).
func TestVirtualNetworkFailedLinkWithoutIntroducer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := sim.New(3)
		xBlocked, tBlocked := map[netip.AddrPort]bool{}, map[netip.AddrPort]bool{}
		p, pAddr := simNode(t, nw, 0)
		x, xAddr := simNodeFiltered(t, nw, 1, xBlocked)
		tn, tAddr := simNodeFiltered(t, nw, 2, tBlocked)
		xBlocked[tAddr], tBlocked[xAddr] = true, true
		ctx := context.Background()
		for _, o := range []*Overlay{x, tn} {
			_, _, err := o.link(ctx, candidate{id: p.self, addr: pAddr, public: true})
			require.NoError(t, err)
		}

		alone := candidate{id: tn.self, addr: tAddr}
		_, _, err := x.link(ctx, alone)
		require.ErrorIs(t, err, errNoLink, "no direct path, and no introducer")

		introduced := candidate{id: tn.self, addr: tAddr, introducer: p.self}
		path, _, err := x.link(ctx, introduced)
		require.NoError(t, err, "the node is reached through the introducer")
		require.Equal(t, p.self, path.relay())

		_, _, err = x.link(ctx, alone)
		require.NoError(t, err, "a verified path serves any candidate")
	})
}

// A node named by a contact that this node reaches only through a relay is
// linked to through that relay: x reaches r through p, r names t, and x,
// which exchanges no packet directly with r or t, links to t through p
// (virtual network, synctest).
func TestVirtualNetworkLinkThroughIntroducersRelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := sim.New(4)
		xBlocked, rBlocked, tBlocked := map[netip.AddrPort]bool{}, map[netip.AddrPort]bool{}, map[netip.AddrPort]bool{}
		p, pAddr := simNode(t, nw, 0)
		x, xAddr := simNodeFiltered(t, nw, 1, xBlocked)
		r, rAddr := simNodeFiltered(t, nw, 2, rBlocked)
		tn, tAddr := simNodeFiltered(t, nw, 3, tBlocked)
		xBlocked[rAddr], xBlocked[tAddr] = true, true
		rBlocked[xAddr], tBlocked[xAddr] = true, true
		ctx := context.Background()
		for _, o := range []*Overlay{x, r, tn} {
			_, _, err := o.link(ctx, candidate{id: p.self, addr: pAddr, public: true})
			require.NoError(t, err)
		}
		path, _, err := x.link(ctx, candidate{id: r.self, addr: rAddr, introducer: p.self})
		require.NoError(t, err)
		require.Equal(t, p.self, path.relay(), "r is reached through p")

		path, _, err = x.link(ctx, candidate{id: tn.self, addr: tAddr, introducer: r.self})
		require.NoError(t, err, "t is reached through r's relay")
		require.Equal(t, p.self, path.relay())
	})
}

// A node that a contact keeps out of its routing table (its subnet has its
// share there) but has a verified path to is named by that contact, and
// linked to through it: p's table takes one node of t's subnet, a, and
// keeps its path to t in its cache; x, which exchanges no packet directly
// with t, finds t through p by a lookup of a key next to t's ID (the way a
// light client whose ID is next to t's finds the node it must attach to)
// and of t's ID (virtual network, synctest).
func TestVirtualNetworkLookupFindsNodeOutsideTable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := sim.New(5)
		xBlocked, tBlocked := map[netip.AddrPort]bool{}, map[netip.AddrPort]bool{}
		p, pAddr := simNodeAt(t, nw, 0, 4000, Config{SubnetPerTable: 1}, nil)
		a, _ := simNodeAt(t, nw, 1, 4000, Config{}, nil)
		tn, tAddr := simNodeAt(t, nw, 1, 4001, Config{}, tBlocked)
		x, xAddr := simNodeAt(t, nw, 2, 4000, Config{}, xBlocked)
		xBlocked[tAddr], tBlocked[xAddr] = true, true
		ctx := context.Background()
		for _, o := range []*Overlay{a, tn, x} {
			_, _, err := o.link(ctx, candidate{id: p.self, addr: pAddr, public: true})
			require.NoError(t, err)
		}
		p.mu.Lock()
		require.NotNil(t, p.tab.get(a.self))
		require.Nil(t, p.tab.get(tn.self), "t's subnet has its share of p's table")
		_, _, known := p.knownPathLocked(tn.self)
		p.mu.Unlock()
		require.True(t, known, "p keeps its path to t in its cache")

		near := tn.self.Key()
		near[len(near)-1] ^= 1
		require.Contains(t, x.lookup(ctx, near), tn.self)
		require.Contains(t, x.lookup(ctx, tn.self.Key()), tn.self)
		path, _, err := x.link(ctx, candidate{id: tn.self})
		require.NoError(t, err)
		require.Equal(t, p.self, path.relay(), "x reaches t through p")
	})
}

// A light client whose ID is next to a node that the public node's table
// kept out (its subnet had its share) attaches to that node, so the node
// reaches the client by ID: p's table takes one node of t's subnet, a; the
// client x, whose ID is closer to t's than to any other full node's, joins
// through p and exchanges no packet directly with t; t, the full node
// closest to x's ID, sends to x (virtual network, synctest).
func TestVirtualNetworkClientAttachesToNodeOutsideTable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := sim.New(6)
		xBlocked, tBlocked := map[netip.AddrPort]bool{}, map[netip.AddrPort]bool{}
		p, pAddr := simNodeAt(t, nw, 0, 4000, Config{SubnetPerTable: 1}, nil)
		a, _ := simNodeAt(t, nw, 1, 4000, Config{}, nil)
		tn, tAddr := simNodeAt(t, nw, 1, 4001, Config{}, tBlocked)
		// The client's key: one whose ID is closer to t's than to a's or p's.
		var priv ed25519.PrivateKey
		for {
			_, k, err := ed25519.GenerateKey(rand.Reader)
			require.NoError(t, err)
			id := ID(k.Public().(ed25519.PublicKey))
			if cmpDistance(tn.self.Key(), a.self.Key(), id.Key()) < 0 && cmpDistance(tn.self.Key(), p.self.Key(), id.Key()) < 0 {
				priv = k
				break
			}
		}
		x, xAddr := simNodeAt(t, nw, 2, 4000, Config{Client: true, Identity: priv}, xBlocked)
		xBlocked[tAddr], tBlocked[xAddr] = true, true
		ctx := context.Background()
		for _, o := range []*Overlay{a, tn} {
			_, _, err := o.link(ctx, candidate{id: p.self, addr: pAddr, public: true})
			require.NoError(t, err)
		}
		p.mu.Lock()
		require.Nil(t, p.tab.get(tn.self), "t's subnet has its share of p's table")
		p.mu.Unlock()

		require.NoError(t, x.Join(ctx, []string{pAddr.String()}, true))
		require.Contains(t, x.Proxies(), tn.self, "x attached to t, the full node closest to its ID")
		require.NoError(t, tn.Send(ctx, []byte("to the client"), x.self.Key(), false))
		m, err := x.Recv(ctx)
		require.NoError(t, err)
		require.Equal(t, []byte("to the client"), m.Data)
	})
}
