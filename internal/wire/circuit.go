package wire

import (
	"encoding/binary"
	"net/netip"
)

// Circuits carry QUIC packets between two nodes through a public node (the
// relay) on the relay's one socket: the ends set a circuit up with circuit
// messages (service 5), then send Circuit frames, which the relay forwards
// from one end to the other unchanged (docs/PROTOCOL.md, §12.12).

// ServiceCircuit is the service of circuit messages.
const ServiceCircuit byte = 5

// TypeCircuit is the first byte of a Circuit frame. It lies outside the
// overlay's range (0x20–0x3F) and QUIC's (bit 0x40 or 0x80 set), in the
// range the socket otherwise drops.
const TypeCircuit byte = 0x1F

// CircuitHeaderLen is the size of a Circuit frame's header: the type and
// the circuit ID.
const CircuitHeaderLen = 1 + 8

// MaxCircuitPayload is the largest payload of a Circuit frame: quic-go
// truncates the datagrams it hands over to 1452 bytes.
const MaxCircuitPayload = 1452 - CircuitHeaderLen

// AppendCircuitFrame appends a Circuit frame carrying payload on circuit id
// to b.
func AppendCircuitFrame(b []byte, id [8]byte, payload []byte) []byte {
	b = append(b, TypeCircuit)
	b = append(b, id[:]...)
	return append(b, payload...)
}

// ParseCircuitFrame decodes a Circuit frame; payload aliases pkt. A frame
// with an empty payload is malformed.
func ParseCircuitFrame(pkt []byte) (id [8]byte, payload []byte, err error) {
	if len(pkt) <= CircuitHeaderLen {
		return id, nil, ErrShort
	}
	if len(pkt) > CircuitHeaderLen+MaxCircuitPayload {
		return id, nil, ErrLong
	}
	if pkt[0] != TypeCircuit {
		return id, nil, ErrType
	}
	copy(id[:], pkt[1:9])
	return id, pkt[CircuitHeaderLen:], nil
}

// CircuitVersion is the version byte of circuit messages.
const CircuitVersion byte = 1

// Circuit message kinds.
const (
	CircuitOffer   byte = 1 // connecting end to the other end: the relays it may use
	CircuitAnswer  byte = 2 // reply to an Offer: the relay chosen (Peer)
	CircuitJoin    byte = 3 // an end to the relay: join circuit ID with Peer
	CircuitPending byte = 4 // reply to a Join: the other end has not joined yet
	CircuitActive  byte = 5 // reply to a Join: both ends joined, frames are forwarded
	CircuitRefuse  byte = 6 // reply to an Offer or a Join: Reason says why
)

// Circuit refusal reasons.
const (
	CircuitNoRelay  byte = 1 // the node does not relay (relaying off, or not public)
	CircuitNoLink   byte = 2 // the sender has no direct link with the node
	CircuitFull     byte = 3 // the node's relaying budget is spent
	CircuitBusy     byte = 4 // the circuit ID belongs to other nodes
	CircuitNoChoice byte = 5 // none of the offered relays will do
	CircuitClosing  byte = 6 // the node is closing
	CircuitConflict byte = 7 // both ends are connecting; the receiver's attempt goes ahead
)

// Circuit message flags (the Flags byte of an Offer or an Answer, which
// a Refuse uses for its Reason).
const (
	// CircuitFlagHardNAT: the sender's NAT maps per destination (a
	// symmetric NAT): each address it sends to sees it at another port.
	CircuitFlagHardNAT byte = 1 << 0
	// CircuitFlagAddr: the message ends with Addr, the sender's address as
	// its contacts see it (only its IP counts when HardNAT is set).
	CircuitFlagAddr byte = 1 << 1
)

// MaxCircuitRelays is the most relays an Offer names.
const MaxCircuitRelays = 4

// CircuitRelay is a relay an Offer names: its ID and the address the
// connecting end reaches it at.
type CircuitRelay struct {
	ID   [32]byte
	Addr netip.AddrPort
}

// CircuitMsg is a circuit message (service 5).
type CircuitMsg struct {
	Kind    byte
	Reason  byte     // Refuse only
	Flags   byte     // every kind but Refuse: CircuitFlag…; Offer and Answer describe the sender
	Circuit [8]byte  // the circuit ID, random at the connecting end
	Peer    [32]byte // Join: the other end; Answer: the chosen relay
	Relays  []CircuitRelay
	Addr    netip.AddrPort // with CircuitFlagAddr: the sender's address as its contacts see it
}

const circuitMsgFixed = 1 + 1 + 1 + 8 + 32 + 1

// AppendCircuitMsg appends m to b. It refuses more than MaxCircuitRelays
// relays, an invalid relay address and an unknown kind.
func AppendCircuitMsg(b []byte, m CircuitMsg) ([]byte, error) {
	if m.Kind < CircuitOffer || m.Kind > CircuitRefuse || len(m.Relays) > MaxCircuitRelays {
		return b, ErrMalformed
	}
	third := m.Flags
	if m.Kind == CircuitRefuse {
		third = m.Reason
	}
	b = append(b, CircuitVersion, m.Kind, third)
	b = append(b, m.Circuit[:]...)
	b = append(b, m.Peer[:]...)
	b = append(b, byte(len(m.Relays)))
	for _, r := range m.Relays {
		if !r.Addr.IsValid() {
			return b, ErrMalformed
		}
		b = append(b, r.ID[:]...)
		b = appendCircuitAddr(b, r.Addr)
	}
	if m.Kind != CircuitRefuse && m.Flags&CircuitFlagAddr != 0 {
		if !m.Addr.IsValid() {
			return b, ErrMalformed
		}
		b = appendCircuitAddr(b, m.Addr)
	}
	return b, nil
}

// appendCircuitAddr appends a: family (4 or 6), IP, port.
func appendCircuitAddr(b []byte, a netip.AddrPort) []byte {
	ip := a.Addr().Unmap()
	if ip.Is4() {
		b = append(b, 4)
	} else {
		b = append(b, 6)
	}
	b = append(b, ip.AsSlice()...)
	return binary.BigEndian.AppendUint16(b, a.Port())
}

// parseCircuitAddr decodes an address as appendCircuitAddr writes it and
// returns the rest of b.
func parseCircuitAddr(b []byte) (netip.AddrPort, []byte, error) {
	if len(b) < 1 {
		return netip.AddrPort{}, b, ErrShort
	}
	size := 0
	switch b[0] {
	case 4:
		size = 4
	case 6:
		size = 16
	default:
		return netip.AddrPort{}, b, ErrAddrFamily
	}
	b = b[1:]
	if len(b) < size+2 {
		return netip.AddrPort{}, b, ErrShort
	}
	ip, _ := netip.AddrFromSlice(b[:size])
	if ip.Is4In6() {
		return netip.AddrPort{}, b, ErrMalformed // an IPv4 address is sent as family 4
	}
	return netip.AddrPortFrom(ip, binary.BigEndian.Uint16(b[size:size+2])), b[size+2:], nil
}

// ParseCircuitMsg decodes a circuit message.
func ParseCircuitMsg(b []byte) (CircuitMsg, error) {
	var m CircuitMsg
	if len(b) < circuitMsgFixed {
		return m, ErrShort
	}
	if b[0] != CircuitVersion {
		return m, ErrVersion
	}
	m.Kind = b[1]
	if m.Kind < CircuitOffer || m.Kind > CircuitRefuse {
		return m, ErrMalformed
	}
	if m.Kind == CircuitRefuse {
		m.Reason = b[2]
	} else {
		m.Flags = b[2]
	}
	copy(m.Circuit[:], b[3:11])
	copy(m.Peer[:], b[11:43])
	n := int(b[43])
	if n > MaxCircuitRelays {
		return m, ErrMalformed
	}
	b = b[circuitMsgFixed:]
	for range n {
		if len(b) < 32 {
			return m, ErrShort
		}
		var r CircuitRelay
		copy(r.ID[:], b[:32])
		var err error
		if r.Addr, b, err = parseCircuitAddr(b[32:]); err != nil {
			return m, err
		}
		m.Relays = append(m.Relays, r)
	}
	if m.Kind != CircuitRefuse && m.Flags&CircuitFlagAddr != 0 {
		var err error
		if m.Addr, b, err = parseCircuitAddr(b); err != nil {
			return m, err
		}
	}
	if len(b) != 0 {
		return m, ErrMalformed
	}
	return m, nil
}
