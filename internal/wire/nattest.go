package wire

import "encoding/binary"

// Frames of the filtering test (PROTOCOL.md §7.12): a node asks a public
// contact to send it one small probe from a source it has not sent to, and
// learns from whether the probe gets through its NAT how the NAT filters.

// Frame types of the filtering test.
const (
	TypeNATTest  byte = 0x2D // ask a public contact for a probe from another source
	TypeNATProbe byte = 0x2E // the probe, or the contact's answer to the request
)

// Kinds of probe a NATTest asks for.
const (
	ProbeOtherPort byte = 1 // from the contact's IP, another port
	ProbeOtherIP   byte = 2 // from another IP of the contact's host
)

// Status of a NATProbe frame.
const (
	ProbeIsProbe  byte = 0 // the probe itself, sent from the other source
	ProbeSent     byte = 1 // the answer: the probe was sent
	ProbeRefused  byte = 2 // the answer: the contact sent none (not public, no such source, over its rate)
	maxProbeState      = ProbeRefused
)

// Sizes of the filtering test's frames. A NATTest is padded so that it is
// larger than everything it makes its receiver send: the probe and the
// answer.
const (
	NATProbeLen = HeaderLen + 10
	NATTestLen  = 2*NATProbeLen + 16
)

// NATTest asks the receiver, a public contact, to send a probe of the given
// Kind to the address the request came from.
type NATTest struct {
	Nonce uint64
	Kind  byte
}

// Append appends the body of t, padded to NATTestLen, to b.
func (t NATTest) Append(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, t.Nonce)
	b = append(b, t.Kind)
	return append(b, make([]byte, NATTestLen-HeaderLen-9)...)
}

// ParseNATTest decodes a NATTest body: exactly NATTestLen-HeaderLen bytes, a
// known kind and zero padding.
func ParseNATTest(body []byte) (NATTest, error) {
	var t NATTest
	if len(body) != NATTestLen-HeaderLen {
		return t, ErrMalformed
	}
	t.Nonce, t.Kind = binary.BigEndian.Uint64(body), body[8]
	if t.Kind != ProbeOtherPort && t.Kind != ProbeOtherIP {
		return t, ErrMalformed
	}
	if !zero(body[9:]) {
		return t, ErrMalformed
	}
	return t, nil
}

// NATProbe is the probe a NATTest asked for (Status ProbeIsProbe), or the
// answer to the request (ProbeSent, ProbeRefused); it echoes the request's
// Nonce and Kind.
type NATProbe struct {
	Nonce  uint64
	Kind   byte
	Status byte
}

// Append appends the body of p to b.
func (p NATProbe) Append(b []byte) []byte {
	return append(binary.BigEndian.AppendUint64(b, p.Nonce), p.Kind, p.Status)
}

// ParseNATProbe decodes a NATProbe body: exactly NATProbeLen-HeaderLen bytes,
// a known kind and status.
func ParseNATProbe(body []byte) (NATProbe, error) {
	var p NATProbe
	if len(body) != NATProbeLen-HeaderLen {
		return p, ErrMalformed
	}
	p.Nonce, p.Kind, p.Status = binary.BigEndian.Uint64(body), body[8], body[9]
	if (p.Kind != ProbeOtherPort && p.Kind != ProbeOtherIP) || p.Status > maxProbeState {
		return p, ErrMalformed
	}
	return p, nil
}
