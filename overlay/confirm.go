package overlay

import (
	"context"
	"slices"
	"time"

	"github.com/p2psock/p2psock/internal/wire"
)

// Confirmed delivery among hostile nodes. A message goes out greedily, as
// in an honest network, and costs nothing more there; only on failure or
// doubt does its origin look the destination up over disjoint paths and
// send the message straight to the nodes that lookup found, one after
// another, until the right one acknowledges it end to end:
//
//   - failure is no acknowledgement within a wait (a hop that acknowledged
//     a fragment and dropped it, a refusal or an acknowledgement dropped on
//     its way back), or a refusal ("no route") signed by a node that is not
//     the destination: any forwarder can sign one, so it is not trusted to
//     end a Send unless the lookup does not find the destination either;
//   - doubt is an acknowledgement of a message to a key from a node farther
//     from the key than a live contact of this node.
//
// For an ID the node tried is the destination itself if the lookup found it
// (or, if it did not, the nodes closest to it, which forward); for a key,
// the nodes the lookup found, the trusted ones (whose answers no other path
// contradicted) nearest first, this node among them at its own distance.
// Once the lookup has run, an acknowledgement of a message to a key counts
// only from a node tried already: one that the node tried next would not
// outrank.

// delivery is the state of one message's delivery past greedy routing. It
// belongs to the goroutine running Send.
type delivery struct {
	o       *Overlay
	dest    Key
	byKey   bool
	hdr     wire.MsgHeader // the message's
	payload []byte
	handed  [][]byte // the message in mode ModeKeyDirect, once needed

	looked bool        // the lookup over disjoint paths ran
	found  bool        // (an ID) the lookup found the destination
	cands  []candidate // the nodes to send to straight, in order
	cur    int         // the node tried now: cands[cur]; -1: greedy routing
	via    ID          // zero: greedy routing; o.self: this node takes it
	acked  map[ID]ackResult
}

func newDelivery(o *Overlay, h wire.MsgHeader, payload []byte) *delivery {
	return &delivery{o: o, dest: Key(h.Dest), byKey: h.Mode == wire.ModeKey, hdr: h, payload: payload, cur: -1}
}

// direct returns the frames to send straight to the node tried: for a key,
// the message in mode ModeKeyDirect, so that the node takes it rather than
// forward it toward a closer node (which may be one that drops it).
func (d *delivery) direct(frames [][]byte) [][]byte {
	if !d.byKey {
		return frames
	}
	if d.handed == nil {
		h := d.hdr
		h.Mode = wire.ModeKeyDirect
		d.handed = d.o.encodeMessage(h, d.payload)
	}
	return d.handed
}

// lookUp runs the lookup over disjoint paths, once, and orders the nodes
// to try.
func (d *delivery) lookUp(ctx context.Context) {
	if d.looked || ctx.Err() != nil {
		return
	}
	d.looked = true
	o := d.o
	o.ctr.detours.Add(1)
	r := o.lookupDisjoint(ctx, d.dest)
	cands := r.cands
	if d.byKey && !o.cfg.Client { // a client never takes a message to a key
		// This node stands among the trusted ones at its own distance.
		at := r.trusted
		for i, c := range cands[:r.trusted] {
			if cmpDistance(o.self.Key(), c.id.Key(), d.dest) < 0 {
				at = i
				break
			}
		}
		cands = slices.Insert(cands, at, candidate{id: o.self})
	} else if i := slices.IndexFunc(cands, func(c candidate) bool { return c.id == ID(d.dest) }); i >= 0 {
		d.found = true
		cands = []candidate{cands[i]} // the destination itself, and no forwarder
	}
	d.cands = cands
}

// next moves on to the next node to try; past the last, greedy routing
// again, then the first.
func (d *delivery) next() {
	if len(d.cands) == 0 {
		d.cur, d.via = -1, ID{}
		return
	}
	d.cur++
	if d.cur >= len(d.cands) {
		d.cur = -1
		d.via = ID{}
		return
	}
	d.via = d.cands[d.cur].id
}

// send sends the message's fragments the way the delivery stands: greedily,
// or straight to the node tried, or (local) to this node. A node that
// cannot be linked to, or does not acknowledge the fragments hop by hop, is
// passed over. A message to a key that greedy routing would leave at this
// node is confirmed by the lookup first: this node's table may lack the
// closest node (this costs one lookup for the keys this node is closest
// to, a share 1/N of them in a network of N nodes).
func (d *delivery) send(ctx context.Context, frames [][]byte) outcome {
	o := d.o
	for passed := 0; ; {
		switch d.via {
		case ID{}:
			out := o.routeOut(ctx, time.Time{}, frames)
			if out != local || !d.byKey || d.looked || ctx.Err() != nil {
				return out
			}
			d.lookUp(ctx)
			d.next()
			continue
		case o.self:
			return local
		}
		if _, _, err := o.link(ctx, d.cands[d.cur]); err == nil {
			if out := o.sendDirect(ctx, d.via, d.direct(frames)); out != noRoute {
				return out
			}
		}
		if o.isClosed() {
			return closed
		}
		if passed++; passed > len(d.cands) {
			return o.routeOut(ctx, time.Time{}, frames)
		}
		d.next()
	}
}

// silence is the end of a wait with no acknowledgement: the lookup runs if
// it has not, and the next node is tried. It returns an acknowledgement
// received earlier from the node now tried, if any.
func (d *delivery) silence(ctx context.Context) (ackResult, bool) {
	switch {
	case !d.looked:
		d.lookUp(ctx)
		d.next()
	case d.found:
		// The destination was found and linked to: send it again.
	default:
		d.next()
	}
	r, ok := d.acked[d.via]
	return r, ok && d.via != ID{}
}

// onRefusal is what a Send does with a refusal.
type onRefusal int

const (
	refusalIgnore onRefusal = iota // wait on
	refusalRetry                   // send again the way the delivery now stands
	refusalFinal                   // the destination is not in the network
)

// refused handles a "no route" refusal of a message to an ID signed by
// from. The destination's own refusal, or one when the lookup does not
// find the destination either, is final; any other is not trusted, but
// makes the origin look the destination up.
func (d *delivery) refused(ctx context.Context, from ID) onRefusal {
	if d.byKey {
		d.o.ctr.refusalsIgnored.Add(1)
		return refusalIgnore // no honest node refuses a message to a key
	}
	if from == ID(d.dest) {
		return refusalFinal
	}
	d.o.ctr.refusalsIgnored.Add(1)
	if d.looked {
		return refusalIgnore
	}
	d.lookUp(ctx)
	if !d.found {
		return refusalFinal
	}
	d.next()
	return refusalRetry
}

// unrouted handles greedy routing finding no node closer to the ID: it
// reports whether the lookup found the destination, to send to it straight.
func (d *delivery) unrouted(ctx context.Context) bool {
	if d.byKey || d.looked {
		return false
	}
	d.lookUp(ctx)
	if !d.found {
		return false
	}
	d.next()
	return true
}

// ack is what a Send does with an acknowledgement.
type ack int

const (
	ackIgnore ack = iota // wait on
	ackRetry             // send again the way the delivery now stands
	ackAccept            // the message is delivered
)

// acknowledged handles an end-to-end acknowledgement signed by r.from.
func (d *delivery) acknowledged(ctx context.Context, r ackResult) ack {
	if !d.byKey {
		if r.from == ID(d.dest) {
			return ackAccept
		}
		return ackIgnore // signed by another node
	}
	if !d.looked {
		if !d.o.doubtful(d.dest, r.from) {
			return ackAccept
		}
		d.lookUp(ctx)
		d.next()
		if d.accepts(r.from) {
			return ackAccept
		}
		d.remember(r)
		return ackRetry
	}
	if d.accepts(r.from) {
		return ackAccept
	}
	d.remember(r)
	return ackIgnore
}

// accepts reports whether an acknowledgement of a message to a key from
// from counts: from is a node tried already, or the lookup found no node
// to try.
func (d *delivery) accepts(from ID) bool {
	i := slices.IndexFunc(d.cands, func(c candidate) bool { return c.id == from })
	if i < 0 {
		return len(d.cands) == 0
	}
	return d.cur < 0 || i <= d.cur
}

// remember keeps an acknowledgement that did not count yet.
func (d *delivery) remember(r ackResult) {
	if d.acked == nil {
		d.acked = map[ID]ackResult{}
	}
	if len(d.acked) < 2*d.o.cfg.K {
		d.acked[r.from] = r
	}
}

// sendDirect sends a message's fragments to to, a node with a verified
// path, until it acknowledges each of them or ctx ends.
func (o *Overlay) sendDirect(ctx context.Context, to ID, frames [][]byte) outcome {
	for _, f := range frames {
		r, err := wire.ParseRoute(f[wire.HeaderLen:])
		if err != nil {
			return noRoute
		}
		if err := o.sendReliable(ctx, to, f, hopKey{from: to, msgID: r.Msg.MsgID, kind: r.Msg.Kind, frag: r.FragIndex}); err != nil {
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
	return id, o.directLocked(id)
}

// directLocked reports whether a fragment to the ID id goes to it straight
// over a verified path outside the table (see directHop).
func (o *Overlay) directLocked(id ID) bool {
	if o.tab.get(id) != nil {
		return false // the greedy next hop is the destination already
	}
	_, _, ok := o.knownPathLocked(id)
	return ok
}
