package overlay_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/simnet"
	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/overlay"
)

// TestCheckNATSimnet: behind each simulated NAT, the filtering test tells
// the filters that pass a probe from another port of a contacted host
// (full cone, restricted) from those that do not (port-restricted,
// symmetric); the simulated hosts have one address each, so no contact can
// send the probe from another IP and the first two stay
// endpoint-or-address-dependent. The public node answers each request
// with one probe.
func TestCheckNATSimnet(t *testing.T) {
	kinds := []simnet.Kind{simnet.Public, simnet.Public, simnet.FullCone, simnet.Restricted, simnet.PortRestricted, simnet.Symmetric}
	want := []overlay.Filtering{overlay.FilteringNotPort, overlay.FilteringNotPort, overlay.FilteringNotPort,
		overlay.FilteringNotPort, overlay.FilteringAddressPort, overlay.FilteringAddressPort}
	nw := vnet(t, kinds, overlay.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 1; i < len(kinds); i++ { // the entry point may not know yet that the others are public
		t.Run(kinds[i].String(), func(t *testing.T) {
			n := nw.Nodes[i]
			testnet.Eventually(t, 10*time.Second, "a public contact", func() bool {
				for _, c := range n.DirectContacts(8) {
					if c.Public {
						return true
					}
				}
				return false
			})
			f, err := n.CheckNAT(ctx)
			require.NoError(t, err)
			require.Equal(t, want[i], f)
			require.Equal(t, want[i], n.Info().Filtering)
		})
	}
	var probes uint64
	for _, n := range nw.Nodes {
		probes += n.Info().Counters.NATProbes
	}
	require.NotZero(t, probes)
}

// TestLoopbackNATTestBounded: a request for a probe from a source that has
// not proved its address is dropped and counted, and gets nothing back but
// a challenge smaller than itself; a contact asking again and again gets its
// probes at the rate of its subnet, the rest refused and counted.
func TestLoopbackNATTestBounded(t *testing.T) {
	testnet.CheckLeaks(t)
	tn := loopback(t, 3, overlay.Config{})
	target := tn.Nodes[1]

	s := newRawSender(t, target)
	req := wire.NATTest{Nonce: 1, Kind: wire.ProbeOtherPort}.Append(wire.AppendHeader(nil, wire.Header{Type: wire.TypeNATTest, Net: s.net, Sender: s.id}))
	s.send(req)
	testnet.Eventually(t, 5*time.Second, "the stranger's request dropped", func() bool {
		return target.Info().Counters.DroppedUnknownPeer >= 1
	})
	buf := make([]byte, 2048)
	require.NoError(t, s.pc.SetReadDeadline(time.Now().Add(200*time.Millisecond)))
	for {
		n, _, err := s.pc.ReadFrom(buf)
		if err != nil {
			break
		}
		require.Equal(t, wire.TypePing, buf[0], "only a challenge")
		require.Less(t, n, len(req))
	}
	require.Zero(t, target.Info().Counters.NATProbes)

	// A linked sender asking once gets one probe, from the target's IP and
	// another port, and the answer: fewer bytes than its request.
	l := newRawSender(t, target)
	l.linkWith(target)
	req = wire.NATTest{Nonce: 2, Kind: wire.ProbeOtherPort}.Append(l.hdr(wire.TypeNATTest))
	l.send(req)
	targetAddr := netip.MustParseAddrPort(target.Addr())
	got, sent, answered := 0, 0, false
	for !answered {
		require.NoError(t, l.pc.SetReadDeadline(time.Now().Add(5*time.Second)))
		n, from, err := l.pc.ReadFrom(buf)
		require.NoError(t, err, "no answer to the request")
		f := buf[:n]
		h, body, err := wire.ParseHeader(f)
		if err != nil || h.Type != wire.TypeNATProbe {
			continue // a keepalive
		}
		pr, err := wire.ParseNATProbe(body)
		require.NoError(t, err)
		require.Equal(t, uint64(2), pr.Nonce)
		got += n
		src := netip.MustParseAddrPort(from.String())
		if pr.Status == wire.ProbeIsProbe {
			sent++
			require.Equal(t, targetAddr.Addr(), src.Addr())
			require.NotEqual(t, targetAddr.Port(), src.Port())
		} else {
			require.Equal(t, wire.ProbeSent, pr.Status)
			require.Equal(t, targetAddr, src)
			answered = true
		}
	}
	require.Equal(t, 1, sent)
	require.Less(t, got, len(req))

	// A contact asking ten times in a row.
	asker := tn.Nodes[2]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	for range 10 {
		_, err := asker.CheckNAT(ctx)
		require.NoError(t, err)
	}
	var probes, limited uint64
	for _, n := range tn.Nodes[:2] {
		c := n.Info().Counters
		probes, limited = probes+c.NATProbes, limited+c.DroppedRateLimited
	}
	// A burst of 4, then 2 a second, from each of the two it asks.
	require.LessOrEqual(t, probes, uint64(2*(4+2*time.Since(start).Seconds()+1)))
	require.NotZero(t, limited)
}
