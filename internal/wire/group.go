package wire

import (
	"crypto/ed25519"
	"encoding/binary"
	"net/netip"
)

// Group service messages (service ServiceGroup), the first byte of their
// payloads; docs/PROTOCOL.md §11.3.
const (
	GroupJoin      byte = 1 // group(32) flags(1): the sender is (still) a child; flags bit 0: it has a member
	GroupLeave     byte = 2 // group(32): the sender is no longer a child
	GroupPublish   byte = 3 // envelope: a multicast for the root (routed by key)
	GroupData      byte = 4 // envelope: a multicast going down the tree
	GroupAny       byte = 5 // down(1) envelope: an anycast on its way to a member
	GroupAnyResult byte = 6 // msgID(16) status(1): the outcome, to the anycast's origin
	GroupBcast     byte = 7 // height(2) envelope: a broadcast, for the nodes sharing height bits with the receiver
	GroupRoot      byte = 8 // group(32): the sender has just become the root
	GroupRedirect  byte = 9 // group(32) target(32) flags(1) addr: from the receiver's parent: attach to target instead
)

// Flags of group messages.
const (
	GroupFlagMember byte = 1 << 0 // (Join) the sender has an open member in the group
	GroupFlagPublic byte = 1 << 0 // (Redirect) the target reported itself Public
)

// Outcomes of an anycast, the status of an AnyResult.
const (
	AnyDelivered byte = 0 // a member took it
	AnyEmpty     byte = 1 // the group has no member
)

// Kinds of group envelopes.
const (
	EnvMulticast byte = 1
	EnvAnycast   byte = 2
	EnvBroadcast byte = 3
)

// EnvOverhead is the size of an envelope without its data.
const EnvOverhead = envHeaderLen + SigLen

const envHeaderLen = 1 + 32 + 32 + 16 + 8 + 4

// GroupMsg is a message of the group service. Which fields a type uses:
//
//	Join      Group, Flags
//	Leave     Group
//	Publish   Envelope
//	Data      Envelope
//	Any       Down, Envelope
//	AnyResult MsgID, Status
//	Bcast     Height, Envelope
//	Root      Group
//	Redirect  Group, Target, Flags, Addr
//
// Envelope is the raw envelope, decoded and checked with OpenEnvelope.
type GroupMsg struct {
	Type     byte
	Group    [32]byte
	Flags    byte
	Target   [32]byte
	Addr     netip.AddrPort // invalid: the sender reaches the target through a relay
	Down     byte           // 1: the anycast goes down the tree; any other value: up
	Height   uint16
	MsgID    [16]byte
	Status   byte
	Envelope []byte
}

// Append appends the encoding of m to b. A Join always carries its flags
// byte.
func (m GroupMsg) Append(b []byte) []byte {
	b = append(b, m.Type)
	switch m.Type {
	case GroupJoin:
		b = append(append(b, m.Group[:]...), m.Flags)
	case GroupLeave, GroupRoot:
		b = append(b, m.Group[:]...)
	case GroupPublish, GroupData:
		b = append(b, m.Envelope...)
	case GroupAny:
		b = append(append(b, m.Down), m.Envelope...)
	case GroupAnyResult:
		b = append(append(b, m.MsgID[:]...), m.Status)
	case GroupBcast:
		b = append(binary.BigEndian.AppendUint16(b, m.Height), m.Envelope...)
	case GroupRedirect:
		b = append(append(b, m.Group[:]...), m.Target[:]...)
		b = AppendAddr(append(b, m.Flags), m.Addr)
	}
	return b
}

// ParseGroupMsg decodes a group message, not its envelope. It accepts a Join
// without its flags byte (as flags 0), and rejects an empty payload
// (ErrShort), an unknown type (ErrType) and a body of the wrong length for
// its type (ErrMalformed). The Envelope of the result aliases b.
func ParseGroupMsg(b []byte) (GroupMsg, error) {
	var m GroupMsg
	if len(b) == 0 {
		return m, ErrShort
	}
	m.Type = b[0]
	body := b[1:]
	switch m.Type {
	case GroupJoin:
		if len(body) != 32 && len(body) != 33 {
			return m, ErrMalformed
		}
		copy(m.Group[:], body)
		if len(body) == 33 {
			m.Flags = body[32]
		}
	case GroupLeave, GroupRoot:
		if len(body) != 32 {
			return m, ErrMalformed
		}
		copy(m.Group[:], body)
	case GroupPublish, GroupData:
		m.Envelope = body
	case GroupAny:
		if len(body) < 1 {
			return m, ErrMalformed
		}
		m.Down, m.Envelope = body[0], body[1:]
	case GroupAnyResult:
		if len(body) != 17 {
			return m, ErrMalformed
		}
		copy(m.MsgID[:], body)
		m.Status = body[16]
	case GroupBcast:
		if len(body) < 2 {
			return m, ErrMalformed
		}
		m.Height, m.Envelope = binary.BigEndian.Uint16(body), body[2:]
	case GroupRedirect:
		if len(body) < 65 {
			return m, ErrMalformed
		}
		copy(m.Group[:], body[:32])
		copy(m.Target[:], body[32:64])
		m.Flags = body[64]
		addr, rest, err := ParseAddr(body[65:])
		if err != nil || len(rest) != 0 {
			return m, ErrMalformed
		}
		m.Addr = addr
	default:
		return m, ErrType
	}
	return m, nil
}

// EnvelopeKind is the kind of envelope a group message of type t carries, 0
// if it carries none.
func EnvelopeKind(t byte) byte {
	switch t {
	case GroupPublish, GroupData:
		return EnvMulticast
	case GroupAny:
		return EnvAnycast
	case GroupBcast:
		return EnvBroadcast
	}
	return 0
}

// Envelope is a group message as its origin signed it; every hop forwards it
// unchanged. Its encoding:
//
//	kind(1) group(32) origin(32) msgID(16) timestamp(8, Unix ms) len(4) data sig(64)
//
// Sig signs EnvelopeSigned(network tag, every byte before it).
type Envelope struct {
	Kind      byte // EnvMulticast, EnvAnycast or EnvBroadcast
	Group     [32]byte
	Origin    [32]byte // the signer's ID, its Ed25519 public key
	MsgID     [16]byte
	Timestamp int64 // Unix milliseconds
	Data      []byte
	Sig       []byte
}

// AppendUnsigned appends every byte of e's encoding before the signature.
func (e *Envelope) AppendUnsigned(b []byte) []byte {
	b = append(b, e.Kind)
	b = append(b, e.Group[:]...)
	b = append(b, e.Origin[:]...)
	b = append(b, e.MsgID[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Timestamp))
	b = binary.BigEndian.AppendUint32(b, uint32(len(e.Data)))
	return append(b, e.Data...)
}

// Append appends e's encoding, signature included.
func (e *Envelope) Append(b []byte) []byte { return append(e.AppendUnsigned(b), e.Sig...) }

// EnvelopeSigned returns the bytes an envelope's signature covers:
// "p2psock group v1\x00", the network tag, then unsigned.
func EnvelopeSigned(net [8]byte, unsigned []byte) []byte {
	b := make([]byte, 0, 17+8+len(unsigned))
	b = append(b, "p2psock group v1\x00"...)
	b = append(b, net[:]...)
	return append(b, unsigned...)
}

// ParseEnvelope decodes an envelope without checking its signature. It
// rejects, in this order, fewer than EnvOverhead bytes (ErrShort), and a
// length other than EnvOverhead plus the data length, or a kind outside 1–3
// (ErrMalformed). Data and Sig alias b.
func ParseEnvelope(b []byte) (Envelope, error) {
	var e Envelope
	if len(b) < EnvOverhead {
		return e, ErrShort
	}
	e.Kind = b[0]
	copy(e.Group[:], b[1:33])
	copy(e.Origin[:], b[33:65])
	copy(e.MsgID[:], b[65:81])
	e.Timestamp = int64(binary.BigEndian.Uint64(b[81:89]))
	n := uint64(binary.BigEndian.Uint32(b[89:93]))
	if uint64(len(b)) != EnvOverhead+n || e.Kind < EnvMulticast || e.Kind > EnvBroadcast {
		return Envelope{}, ErrMalformed
	}
	e.Data = b[envHeaderLen : envHeaderLen+n]
	e.Sig = b[envHeaderLen+n:]
	return e, nil
}

// OpenEnvelope decodes an envelope (ParseEnvelope) and checks its origin's
// signature under the network tag net (ErrSignature).
func OpenEnvelope(b []byte, net [8]byte) (Envelope, error) {
	e, err := ParseEnvelope(b)
	if err != nil {
		return e, err
	}
	if !ed25519.Verify(e.Origin[:], EnvelopeSigned(net, b[:len(b)-SigLen]), e.Sig) {
		return Envelope{}, ErrSignature
	}
	return e, nil
}
