package p2psock

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/p2psock/p2psock/internal/simnet"
	"github.com/p2psock/p2psock/internal/testnet"
)

// TestNATType: the NAT type each mapping and filtering behaviour makes.
func TestNATType(t *testing.T) {
	for _, c := range []struct{ mapping, filtering, want string }{
		{MappingUnknown, FilteringUnknown, NATUnknown},
		{MappingNone, FilteringIndependent, NATOpen},
		{MappingNone, FilteringUnknown, NATOpen},
		{MappingNone, FilteringAddressPort, NATFirewalled},
		{MappingIndependent, FilteringIndependent, NATFullCone},
		{MappingIndependent, FilteringAddress, NATRestricted},
		{MappingIndependent, FilteringAddressPort, NATPortRestricted},
		{MappingIndependent, FilteringNotPort, NATCone},
		{MappingIndependent, FilteringUnknown, NATCone},
		{MappingDependent, FilteringAddressPort, NATSymmetric},
	} {
		t.Run(c.mapping+"/"+c.filtering, func(t *testing.T) {
			require.Equal(t, c.want, natType(c.mapping, c.filtering))
		})
	}
}

// TestCheckNATSimnet: CheckNAT behind simulated NATs reports the filtering
// and the NAT type, and Info keeps reporting them. (The simulated hosts
// have one address each: nobody can probe from a second IP, so the cone
// NATs whose filter lets other ports through stay "cone".)
func TestCheckNATSimnet(t *testing.T) {
	kinds := []simnet.Kind{simnet.Public, simnet.Public, simnet.Restricted, simnet.PortRestricted, simnet.Symmetric}
	tn, _ := newVnetNet(t, kinds)
	want := []struct{ typ, filtering string }{
		2: {NATCone, FilteringNotPort},
		3: {NATPortRestricted, FilteringAddressPort},
		4: {NATSymmetric, FilteringAddressPort},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 2; i < len(kinds); i++ {
		t.Run(kinds[i].String(), func(t *testing.T) {
			n := tn.nodes[i]
			// A symmetric NAT shows once two contacts saw two ports.
			testnet.Eventually(t, 10*time.Second, "the mapping known", func() bool {
				m := n.Info().NAT.Mapping
				return m == MappingIndependent || (kinds[i] == simnet.Symmetric && m == MappingDependent)
			})
			inf, err := n.CheckNAT(ctx)
			require.NoError(t, err)
			require.Equal(t, want[i].filtering, inf.Filtering)
			require.Equal(t, want[i].typ, inf.Type)
			require.NotEmpty(t, inf.PublicAddrs)
			require.Equal(t, inf, n.Info().NAT)
		})
	}
}
