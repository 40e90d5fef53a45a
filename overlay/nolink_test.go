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

func simNode(t *testing.T, nw *sim.Network, host int) (*Overlay, netip.AddrPort) {
	t.Helper()
	c, err := nw.Listen(host, 4000)
	require.NoError(t, err)
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	o, err := New(Config{Identity: priv, Network: "nolink", Difficulty: -1}, simTransport{c})
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
