package overlay

import (
	"context"
	"slices"

	"github.com/p2psock/p2psock/internal/wire"
)

// Confirmed delivery among hostile nodes. A message goes out greedily, as
// in an honest network; only on failure or doubt does its origin look the
// destination up over disjoint paths and send the message again straight to
// the node that lookup found: the destination itself for an ID (or, if the
// lookup did not find it, the node closest to it, which forwards), the
// closest trusted node for a key. Failure is no acknowledgement within the
// first wait (a hop that acknowledged a fragment and dropped it, or an
// acknowledgement dropped on its way back); doubt is an acknowledgement of a
// message to a key from a node farther from the key than a contact of this
// node.

// detour looks dest up over disjoint paths and links to the node the
// message should go to straight away. self is true when this node is the
// closest to a key.
func (o *Overlay) detour(ctx context.Context, dest Key, byKey bool) (to ID, self bool, ok bool) {
	r := o.lookupDisjoint(ctx, dest)
	cands := r.cands
	if byKey {
		// The trusted nodes come first; among them the nearest. This node
		// takes the message if it is closer than all of them.
		if len(cands) == 0 || cmpDistance(o.self.Key(), cands[0].id.Key(), dest) < 0 {
			return ID{}, true, true
		}
	} else {
		// The destination itself if the lookup found it, then the nodes
		// nearest to it.
		slices.SortStableFunc(cands, func(a, b candidate) int {
			switch {
			case a.id == ID(dest):
				return -1
			case b.id == ID(dest):
				return 1
			}
			return 0
		})
	}
	for _, c := range cands[:min(len(cands), o.cfg.Alpha)] {
		if _, _, err := o.link(ctx, c); err == nil {
			return c.id, false, true
		}
	}
	return ID{}, false, false
}

// sendDirect sends a message's fragments to to, a node with a verified
// path, until it acknowledges each of them.
func (o *Overlay) sendDirect(to ID, frames [][]byte) outcome {
	for _, f := range frames {
		r, err := wire.ParseRoute(f[wire.HeaderLen:])
		if err != nil {
			return noRoute
		}
		if err := o.sendReliable(to, f, hopKey{from: to, msgID: r.Msg.MsgID, kind: r.Msg.Kind, frag: r.FragIndex}); err != nil {
			if o.isClosed() {
				return closed
			}
			return noRoute
		}
	}
	return forwarded
}

// doubtful reports whether an acknowledgement from from of a message to key
// is in doubt: this node knows a live contact closer to key.
func (o *Overlay) doubtful(key Key, from ID) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	cs := o.tab.closest(key, 1, func(c *contact) bool { return !c.suspect.IsZero() || c.id == from })
	return len(cs) > 0 && cmpDistance(cs[0].id.Key(), from.Key(), key) < 0
}

// directHop returns a verified path's node to send a fragment to an ID over
// when the destination is not in the table but was linked to recently (a
// detour, or a node whose bucket is full): the fragment goes to it
// directly, past any hop that would drop it.
func (o *Overlay) directHop(r wire.Route) (ID, bool) {
	if r.Msg.Mode != wire.ModeID {
		return ID{}, false
	}
	id := ID(r.Msg.Dest)
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.tab.get(id) != nil {
		return ID{}, false // the greedy next hop is the destination already
	}
	_, _, ok := o.knownPathLocked(id)
	return id, ok
}
