package streams

import (
	"net/netip"
	"testing"

	"github.com/pion/ice/v2"
	"github.com/stretchr/testify/require"
)

// TestMappedCandidatePriority: the mapped candidate is server-reflexive,
// related to the socket, and ranks above every server- or peer-reflexive
// candidate pion gathers or learns, below host ones, so that a peer's
// first checks toward the node's IP go to the mapped port.
func TestMappedCandidatePriority(t *testing.T) {
	local := netip.MustParseAddrPort("10.99.1.2:4100")
	raw, ok := mappedCandidateOf(netip.MustParseAddrPort("203.0.113.7:4100"), local)
	require.True(t, ok)
	c, err := ice.UnmarshalCandidate(raw)
	require.NoError(t, err)
	require.Equal(t, ice.CandidateTypeServerReflexive, c.Type())
	require.Equal(t, "203.0.113.7", c.Address())
	require.Equal(t, 4100, c.Port())
	require.Equal(t, local.Addr().String(), c.RelatedAddress().Address)

	srflx, err := ice.NewCandidateServerReflexive(&ice.CandidateServerReflexiveConfig{
		Network: "udp", Address: "203.0.113.7", Port: 50123, Component: 1, RelAddr: "10.99.1.2", RelPort: 4100})
	require.NoError(t, err)
	prflx, err := ice.NewCandidatePeerReflexive(&ice.CandidatePeerReflexiveConfig{
		Network: "udp", Address: "203.0.113.7", Port: 50124, Component: 1, RelAddr: "10.99.1.2", RelPort: 4100})
	require.NoError(t, err)
	host, err := ice.NewCandidateHost(&ice.CandidateHostConfig{Network: "udp", Address: "10.99.1.2", Port: 4100, Component: 1})
	require.NoError(t, err)
	require.Greater(t, c.Priority(), srflx.Priority())
	require.Greater(t, c.Priority(), prflx.Priority())
	require.Less(t, c.Priority(), host.Priority())
}
