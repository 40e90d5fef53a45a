package wire

import (
	"encoding/binary"
)

const msgHeaderLen = 1 + 1 + 1 + 32 + 32 + 16 + 8 + 4

// MsgHeader describes a routed message. It is the same in every fragment of the
// message and is covered by the origin's signature.
type MsgHeader struct {
	Kind      byte     // KindData, KindAck or KindNack
	Mode      byte     // ModeID, ModeKey or ModeKeyDirect
	Sealed    bool     // the payload is sealed to Dest's key (ModeID only); on the wire, FlagSealed in the mode byte
	Service   byte     // 0: application messages; others: services built on the overlay (see Service*)
	Origin    [32]byte // the ID (Ed25519 public key) of the node that signed the message
	Dest      [32]byte // the ID or key the message is routed to
	MsgID     [16]byte // random, chosen by the origin; an ack carries the ID of the message it acknowledges
	Timestamp int64    // Unix milliseconds at the origin when it signed the message
	Length    uint32   // total payload length
}

func (h *MsgHeader) append(b []byte) []byte {
	mode := h.Mode
	if h.Sealed {
		mode |= FlagSealed
	}
	b = append(b, h.Kind, mode, h.Service)
	b = append(b, h.Origin[:]...)
	b = append(b, h.Dest[:]...)
	b = append(b, h.MsgID[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(h.Timestamp))
	return binary.BigEndian.AppendUint32(b, h.Length)
}

// Sealing returns the HPKE info string a sealed payload is bound to: a domain
// string, the network tag and the message header (with FlagSealed set and
// Length the sealed length). A ciphertext moved under another header (another
// origin, destination, message ID, kind, service or timestamp) does not open.
func (h *MsgHeader) Sealing(net [8]byte) []byte {
	b := make([]byte, 0, 16+8+msgHeaderLen)
	b = append(b, "p2psock seal v1\x00"...)
	b = append(b, net[:]...)
	return h.append(b)
}

// Signed returns the bytes the origin signs: a domain string, the network tag,
// the message header and the whole payload.
func (h *MsgHeader) Signed(net [8]byte, payload []byte) []byte {
	b := make([]byte, 0, 16+8+msgHeaderLen+len(payload))
	b = append(b, "p2psock msg v1\x00"...)
	b = append(b, net[:]...)
	b = h.append(b)
	return append(b, payload...)
}

// FragmentCount returns the number of fragments a payload of n bytes takes.
func FragmentCount(n int) int {
	if n == 0 {
		return 1
	}
	return (n + MaxChunk - 1) / MaxChunk
}

// Route is one fragment of a routed message.
type Route struct {
	Hops      uint8  // the number of nodes that forwarded the fragment (0 as the origin sends it)
	FragIndex uint16 // 0-based
	FragCount uint16 // FragmentCount(Msg.Length)
	Msg       MsgHeader
	Chunk     []byte // payload[FragIndex*MaxChunk:][:up to MaxChunk]
	Sig       [SigLen]byte
}

// Append appends the body of r to b.
func (r *Route) Append(b []byte) []byte {
	b = append(b, r.Hops)
	b = binary.BigEndian.AppendUint16(b, r.FragIndex)
	b = binary.BigEndian.AppendUint16(b, r.FragCount)
	b = r.Msg.append(b)
	b = append(b, r.Chunk...)
	return append(b, r.Sig[:]...)
}

// HopsOffset is the offset of the hop count in a Route frame; forwarders
// increment it in place.
const HopsOffset = HeaderLen

// ParseRoute decodes a route body. It checks that the fragment fields agree
// with the message length, so that a reassembler can trust offsets. Chunk
// aliases body.
func ParseRoute(body []byte) (Route, error) {
	var r Route
	if len(body) < 5+msgHeaderLen+SigLen {
		return r, ErrShort
	}
	r.Hops = body[0]
	r.FragIndex = binary.BigEndian.Uint16(body[1:])
	r.FragCount = binary.BigEndian.Uint16(body[3:])
	m := body[5:]
	r.Msg.Kind = m[0]
	r.Msg.Mode = m[1] &^ FlagSealed
	r.Msg.Sealed = m[1]&FlagSealed != 0
	r.Msg.Service = m[2]
	copy(r.Msg.Origin[:], m[3:35])
	copy(r.Msg.Dest[:], m[35:67])
	copy(r.Msg.MsgID[:], m[67:83])
	r.Msg.Timestamp = int64(binary.BigEndian.Uint64(m[83:91]))
	r.Msg.Length = binary.BigEndian.Uint32(m[91:95])
	rest := m[msgHeaderLen:]
	r.Chunk = rest[:len(rest)-SigLen]
	copy(r.Sig[:], rest[len(rest)-SigLen:])

	if r.Msg.Kind > KindNack || r.Msg.Mode > ModeKeyDirect {
		return r, ErrMalformed
	}
	if r.Msg.Sealed && (r.Msg.Mode != ModeID || r.Msg.Length < SealOverhead) {
		return r, ErrMalformed // only a message to an ID can be sealed, and a sealed payload is never empty
	}
	if r.Msg.Length > MaxRouted && (!r.Msg.Sealed || r.Msg.Length > MaxSealed) {
		return r, ErrLong
	}
	if int(r.FragCount) != FragmentCount(int(r.Msg.Length)) || r.FragIndex >= r.FragCount {
		return r, ErrMalformed
	}
	want := MaxChunk
	if int(r.FragIndex) == int(r.FragCount)-1 {
		want = int(r.Msg.Length) - int(r.FragIndex)*MaxChunk
	}
	if len(r.Chunk) != want {
		return r, ErrMalformed
	}
	return r, nil
}

// HopAck acknowledges one route fragment to the node that sent it on this link.
type HopAck struct {
	MsgID     [16]byte
	Kind      byte
	FragIndex uint16
}

// Append appends the body of a to b.
func (a HopAck) Append(b []byte) []byte {
	b = append(b, a.MsgID[:]...)
	b = append(b, a.Kind)
	return binary.BigEndian.AppendUint16(b, a.FragIndex)
}

// ParseHopAck decodes a hop-ack body.
func ParseHopAck(body []byte) (HopAck, error) {
	var a HopAck
	if len(body) != 19 {
		return a, ErrMalformed
	}
	copy(a.MsgID[:], body)
	a.Kind = body[16]
	a.FragIndex = binary.BigEndian.Uint16(body[17:])
	if a.Kind > KindNack {
		return a, ErrMalformed
	}
	return a, nil
}
