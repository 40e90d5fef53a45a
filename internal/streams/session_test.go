package streams

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pion/ice/v2"
	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/nat"
	"github.com/p2psock/p2psock/overlay"
)

func hostCand(port int) string {
	return fmt.Sprintf("1020016950 1 udp 2130706431 192.0.2.1 %d typ host", port)
}

const (
	relayCand = "3891555988 1 udp 16777215 203.0.113.9 50000 typ relay raddr 203.0.113.9 rport 3478"
	prflxCand = "3891555988 1 udp 1845501695 203.0.113.9 50000 typ prflx raddr 0.0.0.0 rport 0"
	srflxCand = "842163049 1 udp 1694498815 198.51.100.7 61000 typ srflx raddr 10.0.0.2 rport 4000"
)

// TestNewSession: a session has a random ID and ICE credentials of the
// ice-char alphabet (16 and 32 characters), and fails when the engine's
// lifetime ends.
func TestNewSession(t *testing.T) {
	life, end := context.WithCancel(context.Background())
	a, b := newSession(life, overlay.ID{1}, true), newSession(life, overlay.ID{1}, false)
	require.NotEqual(t, a.id, b.id)
	require.NotEqual(t, a.ufrag, b.ufrag)
	for _, s := range []string{a.ufrag, a.pwd} {
		require.Empty(t, strings.Trim(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"))
	}
	require.Len(t, a.ufrag, 16)
	require.Len(t, a.pwd, 32)
	require.NoError(t, a.failed.Err())
	end()
	require.Error(t, a.failed.Err())
	require.Error(t, b.failed.Err())
}

// TestLoopbackSessionRemoteCandidates: candidates that come before the agent are
// kept and handed to the agent when it is attached; later ones go to the
// agent at once; a session takes at most maxRemoteCandidates in all (those
// past it, and those that do not parse, are dropped; copies are ignored). The
// peer's relay and host candidates are remembered, so that a selected pair
// whose remote end is one of them is known to be relayed, or direct, even
// when the agent learnt it as peer-reflexive; any other reflexive remote end
// is a NAT's mapping (punched).
func TestLoopbackSessionRemoteCandidates(t *testing.T) {
	nd := newNet(t, 1, nil)[0]
	s := newSession(context.Background(), overlay.ID{1}, false)
	var cands []string
	for i := range maxPending + 10 {
		cands = append(cands, hostCand(40000+i))
	}
	require.Zero(t, s.addRemote([]string{"not a candidate", relayCand, relayCand}))
	require.Equal(t, 11, s.addRemote(cands))
	s.mu.Lock()
	require.Len(t, s.pending, maxPending)
	s.mu.Unlock()

	agent, err := nd.eng.ice.NewAgent(nat.AgentConfig{LocalUfrag: s.ufrag, LocalPwd: s.pwd})
	require.NoError(t, err)
	s.setAgent(agent)
	defer s.closeAgent()
	remoteCount := func() int {
		remote, err := agent.GetRemoteCandidates()
		require.NoError(t, err)
		return len(remote)
	}
	// pion adds remote candidates on its own goroutine.
	testnet.Eventually(t, 5*time.Second, "the kept candidates to reach the agent",
		func() bool { return remoteCount() == maxPending })
	require.Equal(t, 1, s.addRemote([]string{hostCand(50000)}), "past the bound")

	s2 := newSession(context.Background(), overlay.ID{1}, false)
	agent2, err := nd.eng.ice.NewAgent(nat.AgentConfig{LocalUfrag: s2.ufrag, LocalPwd: s2.pwd})
	require.NoError(t, err)
	s2.setAgent(agent2)
	defer s2.closeAgent()
	require.Zero(t, s2.addRemote([]string{hostCand(50000)}))
	testnet.Eventually(t, 5*time.Second, "a later candidate to reach the agent", func() bool {
		remote, err := agent2.GetRemoteCandidates()
		require.NoError(t, err)
		return len(remote) == 1
	})

	local, err := ice.UnmarshalCandidate(hostCand(4000))
	require.NoError(t, err)
	for _, tc := range []struct {
		remote string
		kind   overlay.PathKind
	}{
		{relayCand, overlay.PathRelayed},
		{prflxCand, overlay.PathRelayed}, // the address of the signalled relay candidate
		{hostCand(40000), overlay.PathDirect},
		{strings.Replace(prflxCand, "203.0.113.9 50000", "192.0.2.1 40000", 1), overlay.PathDirect}, // a signalled host candidate's address
		{strings.Replace(prflxCand, "50000", "50001", 1), overlay.PathPunched},                      // learnt from a check: a NAT's mapping
		{srflxCand, overlay.PathPunched},
	} {
		r, err := ice.UnmarshalCandidate(tc.remote)
		require.NoError(t, err)
		addr, kind := s.remoteEnd(&ice.CandidatePair{Local: local, Remote: r})
		require.Equal(t, tc.kind, kind, tc.remote)
		require.Equal(t, r.Port(), addr.Port)
		require.Equal(t, r.Address(), addr.IP.String())
	}
}

// TestLoopbackOfferCarriesHostCandidates: the offer and the answer carry
// the node's host candidates: exactly its socket's address, as its ICE
// agents gather it; none with ForceRelay.
func TestLoopbackOfferCarriesHostCandidates(t *testing.T) {
	nodes := newNet(t, 2, func(i int, c *Config) { c.ForceRelay = i == 1 })
	cands := nodes[0].eng.hostCandidates()
	require.Len(t, cands, 1)
	c, err := ice.UnmarshalCandidate(cands[0])
	require.NoError(t, err)
	require.Equal(t, ice.CandidateTypeHost, c.Type())
	addr := nodes[0].Sock.LocalAddr().String()
	require.Equal(t, addr, fmt.Sprintf("%s:%d", c.Address(), c.Port()))
	require.Empty(t, nodes[1].eng.hostCandidates())
}

// loopCand is a host candidate on loopback: checks to it stay on this
// machine.
func loopCand(port int) string {
	return fmt.Sprintf("1020016950 1 udp 2130706431 127.0.0.1 %d typ host", port)
}
