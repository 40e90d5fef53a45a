package overlay

// PathKind says how a link between two nodes runs: straight to the peer's
// own address, through a NAT's mapping of the peer's address, or through a
// relay. Its values are the strings "direct", "punched" and "relayed", the
// words the view page and the metrics (label path) use.
type PathKind string

const (
	// PathDirect is a path to the peer's own socket address: no NAT
	// translates the peer's end of it.
	PathDirect PathKind = "direct"
	// PathPunched is a direct path whose peer end is a NAT's mapping (a
	// server- or peer-reflexive address): it needed NAT traversal, the
	// peer's or both sides' outgoing packets opening the mapping.
	PathPunched PathKind = "punched"
	// PathRelayed is a path through a third node: a contact that relays
	// overlay frames, a TURN relay or a circuit.
	PathRelayed PathKind = "relayed"
)
