package p2psock

import (
	"testing"

	"github.com/pion/ice/v2"
	"github.com/stretchr/testify/require"
)

// The Offer and the Answer carry the node's host candidates: exactly its
// socket's address, as its ICE agents gather it; none with ForceRelay.
func TestLoopbackOfferCarriesHostCandidates(t *testing.T) {
	n, err := NewNode(Config{ListenAddr: "127.0.0.1:0"})
	require.NoError(t, err)
	defer n.Close()
	cands := n.hostCandidates()
	require.Len(t, cands, 1)
	c, err := ice.UnmarshalCandidate(cands[0])
	require.NoError(t, err)
	require.Equal(t, ice.CandidateTypeHost, c.Type())
	require.Equal(t, n.UDPAddr().IP.String(), c.Address())
	require.Equal(t, n.UDPAddr().Port, c.Port())

	r, err := NewNode(Config{ListenAddr: "127.0.0.1:0", ForceRelay: true})
	require.NoError(t, err)
	defer r.Close()
	require.Empty(t, r.hostCandidates())
}
