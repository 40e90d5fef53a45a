package group

import (
	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/overlay"
)

// handle serves the group messages of other nodes, routed or link messages
// alike (PROTOCOL §11.1): it decodes the message and hands it to the
// handler of its type. It runs on the node's packet path: handlers do the
// bookkeeping that does not wait (tree state, the local part of a
// multicast) and start anything that waits in the background.
//
// It accepts every message, also one it ignores (unknown type, wrong
// length, bad envelope: acknowledging stops the sender's retries), except
// an empty one, every message once the service is closed, and a message
// whose background work does not fit (Stats.Busy). The reply is 00, or 01
// from a Root that attached this node.
func (g *Groups) handle(om overlay.Message) ([]byte, bool) {
	if g.closed.Load() || len(om.Data) == 0 {
		g.refused.Add(1)
		return nil, false
	}
	m, err := wire.ParseGroupMsg(om.Data)
	if err != nil {
		g.malformed.Add(1)
		return accepted()
	}
	switch m.Type {
	case wire.GroupJoin:
		return g.onJoin(om.From, m)
	case wire.GroupLeave:
		return g.onLeave(om.From, m)
	case wire.GroupRoot:
		return g.onRoot(om.From, m)
	case wire.GroupRedirect:
		return g.onRedirect(om.From, m)
	case wire.GroupAnyResult:
		return g.onAnyResult(m)
	}
	e, ok := g.open(m.Type, m.Envelope)
	if !ok {
		g.badEnvelope.Add(1) // forged or corrupt: dropped
		return accepted()
	}
	switch m.Type {
	case wire.GroupPublish:
		return g.onPublish(e)
	case wire.GroupData:
		return g.onData(e)
	case wire.GroupAny:
		return g.onAny(m, e)
	default: // wire.GroupBcast, the last type that carries an envelope
		return g.onBcast(m, e)
	}
}

// accepted is the reply of a message this node takes: 00.
func accepted() ([]byte, bool) { return []byte{0}, true }
