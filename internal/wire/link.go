package wire

import "encoding/binary"

// Link messages go one hop, from a node to a contact over their verified
// link: no routing, no signature, one acknowledgement per message rather
// than per fragment. The group service's tree edges use them.

const linkHeaderLen = 1 + 8 + 1 + 1 + 4

const (
	// LinkOverhead is the size of a Link frame without its chunk.
	LinkOverhead = HeaderLen + linkHeaderLen
	// MaxLinkChunk is the largest message chunk in one Link frame.
	MaxLinkChunk = MaxFrame - LinkOverhead
	// MaxLinkFragments is the largest fragment count of a link message.
	MaxLinkFragments = (MaxMessage + MaxLinkChunk - 1) / MaxLinkChunk
)

// LinkFragmentCount returns the number of Link frames a payload of n bytes
// takes.
func LinkFragmentCount(n int) int {
	if n == 0 {
		return 1
	}
	return (n + MaxLinkChunk - 1) / MaxLinkChunk
}

// Link is one fragment of a link message.
type Link struct {
	Service   byte    // the service that consumes the message (see Service*)
	MsgID     [8]byte // random, chosen by the sender; the same in every fragment
	FragIndex uint8   // 0-based
	FragCount uint8   // LinkFragmentCount(Length)
	Length    uint32  // total payload length
	Chunk     []byte  // payload[FragIndex*MaxLinkChunk:][:up to MaxLinkChunk]
}

// Append appends the body of l to b.
func (l *Link) Append(b []byte) []byte {
	b = append(b, l.Service)
	b = append(b, l.MsgID[:]...)
	b = append(b, l.FragIndex, l.FragCount)
	b = binary.BigEndian.AppendUint32(b, l.Length)
	return append(b, l.Chunk...)
}

// ParseLink decodes a link body. It checks that the fragment fields agree
// with the message length, so that a reassembler can trust offsets. Chunk
// aliases body.
func ParseLink(body []byte) (Link, error) {
	var l Link
	if len(body) < linkHeaderLen {
		return l, ErrShort
	}
	l.Service = body[0]
	copy(l.MsgID[:], body[1:9])
	l.FragIndex, l.FragCount = body[9], body[10]
	l.Length = binary.BigEndian.Uint32(body[11:15])
	l.Chunk = body[linkHeaderLen:]
	if l.Length > MaxMessage {
		return l, ErrLong
	}
	if int(l.FragCount) != LinkFragmentCount(int(l.Length)) || l.FragIndex >= l.FragCount {
		return l, ErrMalformed
	}
	want := MaxLinkChunk
	if l.FragIndex == l.FragCount-1 {
		want = int(l.Length) - int(l.FragIndex)*MaxLinkChunk
	}
	if len(l.Chunk) != want {
		return l, ErrMalformed
	}
	return l, nil
}

// LinkAck acknowledges a whole link message to its sender.
type LinkAck struct {
	MsgID [8]byte
}

// Append appends the body of a to b.
func (a LinkAck) Append(b []byte) []byte { return append(b, a.MsgID[:]...) }

// ParseLinkAck decodes a link-ack body.
func ParseLinkAck(body []byte) (LinkAck, error) {
	var a LinkAck
	if len(body) != 8 {
		return a, ErrMalformed
	}
	copy(a.MsgID[:], body)
	return a, nil
}
