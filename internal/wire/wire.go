// Package wire encodes and decodes the overlay frames of p2psock, version 1.
//
// Every frame starts with a 42-byte header: type (0x20–0x3F), version, an 8-byte
// network tag and the 32-byte ID of the node that sent the frame on this link.
// docs/PROTOCOL.md is the normative description; this package is its code.
// Decoders never panic: any malformed input gives an error.
package wire

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"net/netip"
)

// Version is the protocol version carried in every frame.
const Version = 1

// Frame types. Overlay frames use the first bytes 0x20–0x3F, which neither STUN
// (0x00–0x03) nor QUIC (0x40 and up) use, so they share one UDP socket.
const (
	TypePing    byte = 0x20 // liveness and key-possession challenge
	TypePong    byte = 0x21 // answer to a ping
	TypeFind    byte = 0x22 // ask for the contacts closest to a key
	TypeNodes   byte = 0x23 // answer to a find
	TypeIntro   byte = 0x24 // ask a contact to introduce us to one of its contacts
	TypePunch   byte = 0x25 // introduction: ping this peer at this address
	TypeRelay   byte = 0x26 // forward the inner frame to a contact of yours
	TypeRelayed byte = 0x27 // an inner frame forwarded by the sending relay
	TypeRoute   byte = 0x28 // a fragment of a routed, signed message
	TypeHopAck  byte = 0x29 // link-level acknowledgement of a route fragment
	TypeLeave   byte = 0x2A // the sender is leaving the network
	TypeLink    byte = 0x2B // a fragment of a one-hop link message
	TypeLinkAck byte = 0x2C // acknowledgement of a whole link message

	FirstType = 0x20 // lowest first byte of an overlay frame
	LastType  = 0x3F // highest first byte of an overlay frame
)

// Sizes and limits.
const (
	HeaderLen = 2 + 8 + 32 // type, version, network tag, sender ID
	SigLen    = ed25519.SignatureSize
	// MaxFrame is the largest frame a node sends directly. A relayed frame adds
	// HeaderLen+32 bytes; with IPv6 and UDP headers (48 bytes) the largest
	// packet still fits the IPv6 minimum MTU of 1280 bytes.
	MaxFrame = 1280 - 48 - (HeaderLen + 32)
	// MaxPacket is the largest overlay packet accepted off the network.
	MaxPacket = MaxFrame + HeaderLen + 32
	// MaxContacts is the largest number of contacts in a Nodes frame.
	MaxContacts = 20
	// RouteOverhead is the size of a Route frame without its chunk.
	RouteOverhead = HeaderLen + 5 + msgHeaderLen + SigLen
	// MaxChunk is the largest message chunk in one Route frame.
	MaxChunk = MaxFrame - RouteOverhead
	// MaxMessage is the largest message payload: 64 KiB.
	MaxMessage = 64 << 10
	// SealOverhead is what sealing adds to a payload: the 32-byte HPKE
	// encapsulated key (DHKEM X25519) and the 16-byte AEAD tag.
	SealOverhead = 32 + 16
	// MaxRouted is the largest payload of a routed message in the clear:
	// MaxMessage, and room for the header of a named service.
	MaxRouted = MaxMessage + MaxServiceHeader
	// MaxSealed is the largest sealed payload: a sealed MaxRouted.
	MaxSealed = MaxRouted + SealOverhead
	// MaxFragments is the largest fragment count of a message. A sealed
	// MaxMessage takes no more fragments than a clear one (69).
	MaxFragments = (MaxSealed + MaxChunk - 1) / MaxChunk
	// MaxHops is the hop count past which a route fragment is dropped.
	MaxHops = 64
	// PingLen is the size of a Ping frame without padding.
	PingLen = HeaderLen + 9
	// MaxPongLen is the size of the largest Pong frame: an IPv6 observed
	// address and a signature.
	MaxPongLen = HeaderLen + 9 + 19 + SigLen
	// ProbeLen is the size a node pads the Pings it starts to: a node that
	// does not know the sender yet answers with at most as many bytes as it
	// received, and this pays for the largest Pong and an unpadded Ping
	// challenging the sender in turn.
	ProbeLen = MaxPongLen + PingLen
	// FindLen is the size of a Find frame without padding.
	FindLen = HeaderLen + 40
)

// Ping flags.
const (
	FlagPublic    byte = 1 << 0 // the sender believes it is reachable at its observed address
	FlagWantProof byte = 1 << 1 // (ping) the answer must carry a signature
	// FlagPathLost (ping) says the pinger's QUIC connection with the
	// receiver heard nothing lately: its NAT may have given it a new
	// mapping, which this Ping came through (docs/PROTOCOL.md, §12.14).
	FlagPathLost byte = 1 << 2
)

// Message kinds carried in Route frames.
const (
	KindData byte = 0 // application data
	KindAck  byte = 1 // end-to-end acknowledgement of a data message
	KindNack byte = 2 // the data message could not be delivered
)

// Routing modes.
const (
	ModeID  byte = 0 // deliver to the node whose ID equals Dest
	ModeKey byte = 1 // deliver to the live node whose ID is XOR-closest to Dest
	// ModeKeyDirect is a message to the key Dest that its origin hands
	// straight to the node it found closest (hop count 0, sent by the
	// origin itself): that node takes it and does not forward it.
	ModeKeyDirect byte = 2

	// FlagSealed, set in a Route frame's mode byte (MsgHeader.Sealed), says
	// the payload is sealed with HPKE to the key of the ID Dest (ModeID
	// only).
	FlagSealed byte = 0x80
)

// Nack reasons, the one-byte payload of a KindNack message.
const (
	NackNoRoute   byte = 1 // no node closer to the destination ID is reachable
	NackNoService byte = 2 // the destination does not offer the message's service
	NackSealed    byte = 3 // the destination could not open the sealed payload
)

// Services: the Service byte of a routed message says who consumes it at the
// destination.
const (
	ServiceApp    byte = 0 // application messages (p2psock's RecvFrom)
	ServiceSignal byte = 1 // connection signalling
	ServiceGroup  byte = 2 // group communication
	ServiceDHT    byte = 3 // DHT storage
	ServiceRelay  byte = 4 // relay (TURN) offers
)

// Errors returned by the decoders.
var (
	ErrShort      = errors.New("wire: frame too short")
	ErrLong       = errors.New("wire: frame too long")
	ErrVersion    = errors.New("wire: unsupported version")
	ErrType       = errors.New("wire: not an overlay frame")
	ErrMalformed  = errors.New("wire: malformed frame")
	ErrSignature  = errors.New("wire: bad signature")
	ErrAddrFamily = errors.New("wire: unknown address family")
)

// NetworkTag returns the 8-byte tag of a network name: the first 8 bytes of
// SHA-256("p2psock network\x00" + name).
func NetworkTag(name string) [8]byte {
	h := sha256.Sum256([]byte("p2psock network\x00" + name))
	var t [8]byte
	copy(t[:], h[:8])
	return t
}

// FlagClient, set in a frame's version byte, marks a frame sent by a light
// client (Header.Client): a node that is no member of the overlay, which its
// receivers never put in their routing tables nor name in lookup answers.
// The low 7 bits of that byte are the version.
const FlagClient byte = 0x80

// Header is the common start of every frame.
type Header struct {
	Type   byte
	Net    [8]byte
	Sender [32]byte
	Client bool // the sender is a light client (FlagClient)
}

// SetSender makes frame, one this node passes on (a forwarded Route
// fragment), its own: the sender field becomes sender and the FlagClient
// bit says whether this node is a light client, whatever the previous hop's
// header said. frame must be at least HeaderLen bytes.
func SetSender(frame []byte, sender [32]byte, client bool) {
	frame[1] = Version
	if client {
		frame[1] |= FlagClient
	}
	copy(frame[10:42], sender[:])
}

// AppendHeader appends h to b.
func AppendHeader(b []byte, h Header) []byte {
	v := byte(Version)
	if h.Client {
		v |= FlagClient
	}
	b = append(b, h.Type, v)
	b = append(b, h.Net[:]...)
	return append(b, h.Sender[:]...)
}

// ParseHeader decodes the header of frame and returns the body after it.
func ParseHeader(frame []byte) (Header, []byte, error) {
	var h Header
	if len(frame) < HeaderLen {
		return h, nil, ErrShort
	}
	if len(frame) > MaxPacket {
		return h, nil, ErrLong
	}
	if frame[0] < FirstType || frame[0] > LastType {
		return h, nil, ErrType
	}
	if frame[1]&^FlagClient != Version {
		return h, nil, ErrVersion
	}
	h.Type = frame[0]
	h.Client = frame[1]&FlagClient != 0
	copy(h.Net[:], frame[2:10])
	copy(h.Sender[:], frame[10:42])
	return h, frame[HeaderLen:], nil
}

// AppendAddr appends an address: family 0 (none), 4 (4-byte IPv4) or 6
// (16-byte IPv6), then the address and a 2-byte port.
func AppendAddr(b []byte, a netip.AddrPort) []byte {
	ip := a.Addr().Unmap()
	switch {
	case !a.IsValid():
		return append(b, 0)
	case ip.Is4():
		v := ip.As4()
		b = append(append(b, 4), v[:]...)
	default:
		v := ip.As16()
		b = append(append(b, 6), v[:]...)
	}
	return binary.BigEndian.AppendUint16(b, a.Port())
}

// ParseAddr decodes an address written by AppendAddr and returns the rest.
func ParseAddr(b []byte) (netip.AddrPort, []byte, error) {
	if len(b) < 1 {
		return netip.AddrPort{}, nil, ErrShort
	}
	var n int
	switch b[0] {
	case 0:
		return netip.AddrPort{}, b[1:], nil
	case 4:
		n = 4
	case 6:
		n = 16
	default:
		return netip.AddrPort{}, nil, ErrAddrFamily
	}
	if len(b) < 1+n+2 {
		return netip.AddrPort{}, nil, ErrShort
	}
	ip, _ := netip.AddrFromSlice(b[1 : 1+n])
	port := binary.BigEndian.Uint16(b[1+n:])
	return netip.AddrPortFrom(ip.Unmap(), port), b[1+n+2:], nil
}

// Ping is a liveness check and, with FlagWantProof, a challenge to prove
// possession of the private key of the receiver's ID. Pad zero bytes follow
// the flags: they pay for the answer of a node that does not know the
// sender yet (ProbeLen).
type Ping struct {
	Nonce uint64
	Flags byte
	Pad   int
}

// Append appends the body of p to b.
func (p Ping) Append(b []byte) []byte {
	b = append(binary.BigEndian.AppendUint64(b, p.Nonce), p.Flags)
	return append(b, make([]byte, max(p.Pad, 0))...)
}

// ParsePing decodes a ping body: 9 bytes, then padding that must be zero.
func ParsePing(body []byte) (Ping, error) {
	if len(body) < 9 || !zero(body[9:]) {
		return Ping{}, ErrMalformed
	}
	return Ping{Nonce: binary.BigEndian.Uint64(body), Flags: body[8], Pad: len(body) - 9}, nil
}

// zero reports whether b holds only zero bytes.
func zero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// Pong answers a ping. Observed is the address the ping came from, as the
// responder saw it (none when it came through a relay). Sig, present when the
// ping asked for proof, signs the frame up to the signature followed by the
// pinger's ID.
type Pong struct {
	Nonce    uint64
	Flags    byte
	Observed netip.AddrPort
	Sig      []byte // nil or SigLen bytes
}

// Append appends the body of p to b. The signature is not included; use SignPong.
func (p Pong) Append(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, p.Nonce)
	b = append(b, p.Flags)
	return AppendAddr(b, p.Observed)
}

// ParsePong decodes a pong body. signed is the part of the frame covered by the
// signature (everything before it), given the whole frame.
func ParsePong(frame []byte) (p Pong, signed []byte, err error) {
	if len(frame) < HeaderLen {
		return p, nil, ErrShort
	}
	body := frame[HeaderLen:]
	if len(body) < 9 {
		return p, nil, ErrShort
	}
	p.Nonce = binary.BigEndian.Uint64(body)
	p.Flags = body[8]
	p.Observed, body, err = ParseAddr(body[9:])
	if err != nil {
		return p, nil, err
	}
	switch len(body) {
	case 0:
	case SigLen:
		p.Sig = body
	default:
		return p, nil, ErrMalformed
	}
	return p, frame[:len(frame)-len(body)], nil
}

// PongSigned returns the bytes a pong signature covers: the pong frame without
// its signature, then the ID of the pinger.
func PongSigned(unsigned []byte, pinger [32]byte) []byte {
	return append(append([]byte("p2psock pong v1\x00"), unsigned...), pinger[:]...)
}

// Find asks for the contacts closest to Target. Pad zero bytes follow: they
// pay for the answer of a node that does not know the sender yet.
type Find struct {
	Nonce  uint64
	Target [32]byte
	Pad    int
}

// Append appends the body of f to b.
func (f Find) Append(b []byte) []byte {
	b = append(binary.BigEndian.AppendUint64(b, f.Nonce), f.Target[:]...)
	return append(b, make([]byte, max(f.Pad, 0))...)
}

// ParseFind decodes a find body: 40 bytes, then padding that must be zero.
func ParseFind(body []byte) (Find, error) {
	var f Find
	if len(body) < 40 || !zero(body[40:]) {
		return f, ErrMalformed
	}
	f.Nonce = binary.BigEndian.Uint64(body)
	copy(f.Target[:], body[8:40])
	f.Pad = len(body) - 40
	return f, nil
}

// Contact is one entry of a Nodes frame: a node the sender has a live link
// with, and the address it sees that node at (none if it reaches it through a
// relay).
type Contact struct {
	ID    [32]byte
	Flags byte // FlagPublic as the contact itself reported it
	Addr  netip.AddrPort
}

// Nodes answers a find with at most MaxContacts contacts.
type Nodes struct {
	Nonce    uint64
	Contacts []Contact
}

// Append appends the body of n to b.
func (n Nodes) Append(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, n.Nonce)
	b = append(b, byte(len(n.Contacts)))
	for _, c := range n.Contacts {
		b = append(b, c.ID[:]...)
		b = append(b, c.Flags)
		b = AppendAddr(b, c.Addr)
	}
	return b
}

// ParseNodes decodes a nodes body.
func ParseNodes(body []byte) (Nodes, error) {
	var n Nodes
	if len(body) < 9 {
		return n, ErrShort
	}
	n.Nonce = binary.BigEndian.Uint64(body)
	count := int(body[8])
	if count > MaxContacts {
		return n, ErrMalformed
	}
	body = body[9:]
	n.Contacts = make([]Contact, 0, count)
	for range count {
		if len(body) < 33 {
			return n, ErrShort
		}
		var c Contact
		copy(c.ID[:], body)
		c.Flags = body[32]
		var err error
		if c.Addr, body, err = ParseAddr(body[33:]); err != nil {
			return n, err
		}
		n.Contacts = append(n.Contacts, c)
	}
	if len(body) != 0 {
		return n, ErrMalformed
	}
	return n, nil
}

// Intro asks the receiver to introduce the sender to Target, one of the
// receiver's contacts.
type Intro struct {
	Target [32]byte
}

// Append appends the body of i to b.
func (i Intro) Append(b []byte) []byte { return append(b, i.Target[:]...) }

// ParseIntro decodes an intro body.
func ParseIntro(body []byte) (Intro, error) {
	var i Intro
	if len(body) != 32 {
		return i, ErrMalformed
	}
	copy(i.Target[:], body)
	return i, nil
}

// Punch tells the receiver that Peer, seen at Addr, wants a direct link: the
// receiver pings Addr, which opens its own NAT toward Peer.
type Punch struct {
	Peer [32]byte
	Addr netip.AddrPort
}

// Append appends the body of p to b.
func (p Punch) Append(b []byte) []byte {
	return AppendAddr(append(b, p.Peer[:]...), p.Addr)
}

// ParsePunch decodes a punch body.
func ParsePunch(body []byte) (Punch, error) {
	var p Punch
	if len(body) < 32 {
		return p, ErrShort
	}
	copy(p.Peer[:], body)
	a, rest, err := ParseAddr(body[32:])
	if err != nil {
		return p, err
	}
	if len(rest) != 0 || !a.IsValid() || a.Addr().IsUnspecified() || a.Port() == 0 {
		return p, ErrMalformed
	}
	p.Addr = a
	return p, nil
}

// ParseRelay decodes a relay body: the target ID, then a whole inner frame.
func ParseRelay(body []byte) (target [32]byte, inner []byte, err error) {
	if len(body) < 32+HeaderLen {
		return target, nil, ErrShort
	}
	copy(target[:], body)
	inner = body[32:]
	if len(inner) > MaxFrame {
		return target, nil, ErrLong
	}
	if inner[0] == TypeRelay || inner[0] == TypeRelayed {
		return target, nil, ErrMalformed
	}
	return target, inner, nil
}

// ParseRelayed decodes a relayed body: a whole inner frame.
func ParseRelayed(body []byte) ([]byte, error) {
	if len(body) < HeaderLen {
		return nil, ErrShort
	}
	if len(body) > MaxFrame {
		return nil, ErrLong
	}
	if body[0] == TypeRelay || body[0] == TypeRelayed {
		return nil, ErrMalformed
	}
	return body, nil
}

// Leave says the sender leaves the network. Sig signs the frame before it.
type Leave struct {
	Timestamp int64 // Unix milliseconds
}

// Append appends the unsigned body of l to b.
func (l Leave) Append(b []byte) []byte {
	return binary.BigEndian.AppendUint64(b, uint64(l.Timestamp))
}

// ParseLeave decodes a leave frame and returns the signed part and signature.
func ParseLeave(frame []byte) (l Leave, signed, sig []byte, err error) {
	if len(frame) < HeaderLen {
		return l, nil, nil, ErrShort
	}
	body := frame[HeaderLen:]
	if len(body) != 8+SigLen {
		return l, nil, nil, ErrMalformed
	}
	l.Timestamp = int64(binary.BigEndian.Uint64(body))
	return l, LeaveSigned(frame[:HeaderLen+8]), body[8:], nil
}

// LeaveSigned returns the bytes a leave signature covers.
func LeaveSigned(unsigned []byte) []byte {
	return append([]byte("p2psock leave v1\x00"), unsigned...)
}
