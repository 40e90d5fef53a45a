package p2psock

import (
	"context"
	"net/netip"

	"github.com/p2psock/p2psock/overlay"
)

// NAT mapping behaviours Info reports (RFC 4787), as the node's contacts
// see it.
const (
	MappingUnknown     = "unknown"              // no contact has told the node its address yet
	MappingNone        = "none"                 // contacts see the socket's own address: no NAT
	MappingIndependent = "endpoint-independent" // contacts see one public address: a cone NAT (hole punching works)
	MappingDependent   = "endpoint-dependent"   // contacts see different ports: a symmetric NAT (peers behind strict NATs need a relay)
)

// NAT filtering behaviours (RFC 4787) CheckNAT finds: which unsolicited
// packets reach the node through its NAT or firewall.
const (
	// FilteringUnknown: CheckNAT has not run, or no public contact answered.
	FilteringUnknown = string(overlay.FilteringUnknown)
	// FilteringIndependent: anyone reaches the node at its public address
	// (no filter, or a full-cone NAT).
	FilteringIndependent = string(overlay.FilteringIndependent)
	// FilteringAddress: the hosts the node sent to reach it, from any port
	// (a restricted-cone NAT).
	FilteringAddress = string(overlay.FilteringAddress)
	// FilteringAddressPort: only the addresses (host and port) the node
	// sent to reach it (a port-restricted-cone or symmetric NAT).
	FilteringAddressPort = string(overlay.FilteringAddressPort)
	// FilteringNotPort: the hosts the node sent to reach it from any port;
	// whether others do is not known, as no public contact could send from
	// a second IP (FilteringIndependent or FilteringAddress).
	FilteringNotPort = string(overlay.FilteringNotPort)
)

// The NAT types (RFC 3489's names) that a mapping and a filtering behaviour
// make.
const (
	NATUnknown        = "unknown"              // no contact answered yet
	NATOpen           = "open"                 // no NAT, no filter
	NATFirewalled     = "firewalled"           // no NAT, but unsolicited packets are filtered
	NATFullCone       = "full cone"            // endpoint-independent mapping and filtering
	NATRestricted     = "restricted cone"      // endpoint-independent mapping, address-dependent filtering
	NATPortRestricted = "port-restricted cone" // endpoint-independent mapping, address-and-port-dependent filtering
	NATCone           = "cone"                 // endpoint-independent mapping, filtering not known
	NATSymmetric      = "symmetric"            // endpoint-dependent mapping
)

// NATInfo is what a node learned of the NAT in front of it.
type NATInfo struct {
	// Type is the NAT type the mapping and filtering behaviours make:
	// NATOpen, NATFullCone, NATSymmetric and so on.
	Type string
	// Mapping is the NAT's mapping behaviour: MappingUnknown, MappingNone,
	// MappingIndependent or MappingDependent.
	Mapping string
	// Filtering is the NAT's filtering behaviour as the last CheckNAT found
	// it: FilteringUnknown (before it ran), FilteringIndependent,
	// FilteringAddress, FilteringAddressPort or FilteringNotPort.
	Filtering string
	// PublicAddrs are the addresses the node's contacts saw it at, the
	// latest last (at most 8): one per address family, or several behind a
	// NAT that maps per destination.
	PublicAddrs []netip.AddrPort
	// Relaying reports whether the node relays connections for others: the
	// network sees it at its own address and Config.NoRelaying is off.
	Relaying bool
	// RelayedConns is the number of connections it relays for others now.
	RelayedConns int
	// PortMapping is the node's port mapping on its router: the protocol
	// ("nat-pmp" or "upnp") and the mapped address, "trying", "none" (no
	// router granted one) or "off" (Config.NoPortMapping, or no NAT seen).
	// With a mapping, anyone reaches the node at the mapped address, from
	// any port, whatever Mapping and Filtering say: those describe the
	// NAT's own behaviour, which its other traffic still meets (behind a
	// symmetric NAT, each new destination still sees another port), and
	// the node no longer tells peers that its NAT maps per destination.
	PortMapping string
}

// CheckNAT finds how the node's NAT (or firewall) filters unsolicited
// packets: it asks up to three of its public contacts for a probe from
// another port of their IP and one from another IP of their host, and sees
// which arrive (docs/PROTOCOL.md §7.12). It takes a few round trips, and
// returns what the node then knows of its NAT; Info reports it too. Before
// Bind and after Close it fails with a *net.OpError wrapping ErrNotBound or
// net.ErrClosed.
func (n *Node) CheckNAT(ctx context.Context) (NATInfo, error) {
	if err := n.ready("checknat"); err != nil {
		return NATInfo{}, err
	}
	if _, err := n.ov.CheckNAT(ctx); err != nil {
		return NATInfo{}, err // closed meanwhile: a *net.OpError already
	}
	return n.Info().NAT, nil
}

// natInfo derives NATInfo from the overlay's view.
func natInfo(oi overlay.Info, relaying bool, relayed int) NATInfo {
	n := NATInfo{Mapping: MappingUnknown, Filtering: FilteringUnknown, Relaying: relaying, RelayedConns: relayed,
		PublicAddrs: oi.SeenAt}
	if oi.Filtering != "" {
		n.Filtering = string(oi.Filtering)
	}
	switch {
	case !oi.Observed.IsValid():
	case oi.Public:
		n.Mapping = MappingNone
	case oi.Symmetric:
		n.Mapping = MappingDependent
	default:
		n.Mapping = MappingIndependent
	}
	n.Type = natType(n.Mapping, n.Filtering)
	return n
}

// natType names the NAT that a mapping and a filtering behaviour make.
func natType(mapping, filtering string) string {
	switch mapping {
	case MappingNone:
		if filtering == FilteringAddress || filtering == FilteringAddressPort {
			return NATFirewalled
		}
		return NATOpen
	case MappingDependent:
		return NATSymmetric
	case MappingIndependent:
		switch filtering {
		case FilteringIndependent:
			return NATFullCone
		case FilteringAddress:
			return NATRestricted
		case FilteringAddressPort:
			return NATPortRestricted
		}
		return NATCone
	}
	return NATUnknown
}
