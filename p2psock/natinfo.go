package p2psock

import "github.com/p2psock/p2psock/overlay"

// NAT mapping behaviours Info reports (RFC 4787), as the node's contacts
// see it.
const (
	MappingUnknown     = "unknown"              // no contact has told the node its address yet
	MappingNone        = "none"                 // contacts see the socket's own address: no NAT
	MappingIndependent = "endpoint-independent" // contacts see one public address: a cone NAT (hole punching works)
	MappingDependent   = "endpoint-dependent"   // contacts see different ports: a symmetric NAT (peers behind strict NATs need a relay)
)

// NATInfo is what a node learned of the NAT in front of it.
type NATInfo struct {
	// Mapping is the NAT's mapping behaviour: MappingUnknown, MappingNone,
	// MappingIndependent or MappingDependent.
	Mapping string
	// Relaying reports whether the node relays connections for others: the
	// network sees it at its own address and Config.NoRelaying is off.
	Relaying bool
	// RelayedConns is the number of connections it relays for others now.
	RelayedConns int
	// PortMapping is the node's port mapping on its router: the protocol
	// ("nat-pmp" or "upnp") and the mapped address, "trying", "none" (no
	// router granted one) or "off" (Config.NoPortMapping, or no NAT seen).
	PortMapping string
}

// natInfo derives NATInfo from the overlay's view.
func natInfo(oi overlay.Info, relaying bool, relayed int) NATInfo {
	n := NATInfo{Mapping: MappingUnknown, Relaying: relaying, RelayedConns: relayed}
	switch {
	case !oi.Observed.IsValid():
	case oi.Public:
		n.Mapping = MappingNone
	case oi.Symmetric:
		n.Mapping = MappingDependent
	default:
		n.Mapping = MappingIndependent
	}
	return n
}
