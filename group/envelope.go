package group

import (
	"crypto/rand"
	"time"

	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/overlay"
)

// MaxData is the largest message a group carries: an overlay message less
// the envelope (wire.EnvOverhead) and room for the message header.
const MaxData = overlay.MaxMessage - wire.EnvOverhead - 64

// envelope is a message as its origin signed it (wire.Envelope), with its
// encoding, which every hop forwards unchanged.
type envelope struct {
	wire.Envelope
	raw []byte
}

// seal signs a new envelope of kind for group k with data, from this node.
func (g *Groups) seal(kind byte, k overlay.Key, data []byte) *envelope {
	e := &envelope{Envelope: wire.Envelope{Kind: kind, Group: k, Origin: g.self, Timestamp: time.Now().UnixMilli(), Data: data}}
	rand.Read(e.MsgID[:])
	u := e.AppendUnsigned(make([]byte, 0, wire.EnvOverhead+len(data)))
	e.Sig = g.ov.Sign(wire.EnvelopeSigned(g.tag, u))
	e.raw = append(u, e.Sig...)
	return e
}

// open decodes and verifies the envelope of a received message of type
// typ, which must be of the kind that type carries.
func (g *Groups) open(typ byte, b []byte) (*envelope, bool) {
	e, err := wire.OpenEnvelope(b, g.tag)
	if err != nil || e.Kind != wire.EnvelopeKind(typ) {
		return nil, false
	}
	return &envelope{Envelope: e, raw: b}, true
}

// message is the envelope as a member receives it.
func (e *envelope) message(anycast bool) Message {
	return Message{Data: e.Data, From: e.Origin, Group: e.Group, Anycast: anycast}
}
