package overlay

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/p2psock/p2psock/internal/wire"
)

// Messages are routed greedily: every node hands a fragment to the contact
// closest to the destination that is strictly closer than itself, and a node
// with no closer contact is the destination of a message sent to a key. Each
// hop acknowledges each fragment; a hop that does not answer is dropped from
// the table and the next best contact is tried. The destination reassembles
// the fragments, verifies the origin's signature, delivers the message once,
// and sends a signed acknowledgement back to the origin's ID.

// MaxMessage is the largest message payload Send accepts.
const MaxMessage = wire.MaxMessage

const (
	reasmTimeout = 30 * time.Second
	fragWindow   = 16 // fragments of one message in flight from its origin
)

type ackResult struct {
	from    ID
	nack    bool
	payload []byte // the reply of a service, or the nack reason
}

// Handler consumes the messages of a service at their destination. It must
// not block: it runs on the node's packet path. It returns the reply carried
// back to the sender in the acknowledgement, and ok false to refuse the
// message unacknowledged (the sender retries). A service message may be
// handed over more than once (a retransmission whose first acknowledgement was
// lost), so handlers must be idempotent.
type Handler func(m Message) (reply []byte, ok bool)

// Handle registers h for messages of service (1–255; 0 is the application's,
// read with Recv). Register services before Join.
func (o *Overlay) Handle(service byte, h Handler) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if service != wire.ServiceApp {
		o.services.set(service, h)
	}
}

type reassembly struct {
	hdr wire.MsgHeader
	sig [wire.SigLen]byte
	fragments
}

// fragments collects the chunks of a message being reassembled.
type fragments struct {
	buf     []byte
	have    []bool
	n       int
	created time.Time
}

func newFragments(length, count int) fragments {
	return fragments{buf: make([]byte, length), have: make([]bool, count), created: time.Now()}
}

// add copies chunk i in (every chunk but the last is size bytes) and
// reports whether the message is now complete; a chunk it has is ignored.
func (f *fragments) add(i, size int, chunk []byte) (complete bool) {
	if f.have[i] {
		return false
	}
	f.have[i] = true
	f.n++
	copy(f.buf[i*size:], chunk)
	return f.n == len(f.have)
}

type outcome int

const (
	forwarded outcome = iota
	local
	noRoute
	closed
)

// handler returns the handler registered for service, or nil.
func (o *Overlay) handler(service byte) Handler {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.services.get(service)
}

// Send routes payload to dest, the ID of a node (byKey false) or a key (byKey
// true: the live node closest to it), and returns once the destination has
// acknowledged it. It retransmits until the context ends (or SendTimeout if
// the context has no deadline).
func (o *Overlay) Send(ctx context.Context, payload []byte, dest Key, byKey bool) error {
	_, _, err := o.SendService(ctx, wire.ServiceApp, payload, dest, byKey)
	return err
}

// SendService is Send for a message of a service: the destination's Handler
// for it consumes the message, and its reply comes back with the
// acknowledgement, with the ID of the node that sent it.
func (o *Overlay) SendService(ctx context.Context, service byte, payload []byte, dest Key, byKey bool) (reply []byte, from ID, err error) {
	if o.isClosed() {
		return nil, ID{}, o.errClosed("send")
	}
	if limit := maxPayload(service); len(payload) > limit {
		return nil, ID{}, fmt.Errorf("%w: %d bytes, the limit is %d", ErrMessageTooLarge, len(payload), limit)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.cfg.SendTimeout)
		defer cancel()
	}
	h := wire.MsgHeader{Kind: wire.KindData, Mode: wire.ModeID, Service: service, Origin: o.self, Dest: dest,
		Timestamp: time.Now().UnixMilli(), Length: uint32(len(payload))}
	if byKey {
		h.Mode = wire.ModeKey
	}
	rand.Read(h.MsgID[:])
	body, err := o.seal(&h, payload) // seal.go: sealed to dest's key when sent by ID
	if err != nil {
		return nil, ID{}, fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	frames := o.encodeMessage(h, body)

	ch := make(chan ackResult, 4)
	o.mu.Lock()
	made(&o.acks)[h.MsgID] = ch
	o.mu.Unlock()
	defer func() {
		o.mu.Lock()
		delete(o.acks, h.MsgID)
		o.mu.Unlock()
	}()
	// Greedy routing first; past it, on failure or doubt, the nodes a
	// lookup over disjoint paths found (confirm.go).
	d := newDelivery(o, h, body)
	wait := time.Second
	for {
		out := d.send(ctx, frames)
		if err := ctx.Err(); err != nil && out != closed {
			// The context ended while hops were tried: say so, whatever
			// the hops said.
			return nil, ID{}, fmt.Errorf("%w: no acknowledgement: %w", ErrUnreachable, err)
		}
		switch out {
		case local:
			m := Message{Data: slices.Clone(payload), From: o.self, To: dest, ByKey: byKey, Service: service}
			if reply, ok, known := o.deliverLocalCtx(ctx, m); !known {
				return nil, ID{}, fmt.Errorf("%w: service %d", ErrNoService, service)
			} else if ok {
				o.ctr.sent.Add(1)
				return reply, o.self, nil
			}
		case noRoute:
			// No contact is closer to the ID: a node that joined a
			// moment ago is not yet in every table on the way.
			if d.unrouted(ctx) {
				continue
			}
			return nil, ID{}, fmt.Errorf("%w: no route to %v", ErrUnreachable, ID(dest))
		case closed:
			return nil, ID{}, o.errClosed("send")
		}
		via := d.via
		timer := time.NewTimer(wait)
	waiting:
		for {
			select {
			case r := <-ch:
				if r.nack {
					if r.from == ID(dest) && len(r.payload) == 1 && r.payload[0] == wire.NackNoService {
						timer.Stop()
						return nil, r.from, fmt.Errorf("%w: service %d at %v", ErrNoService, service, r.from)
					}
					if r.from == ID(dest) && len(r.payload) == 1 && r.payload[0] == wire.NackSealed {
						timer.Stop()
						return nil, r.from, fmt.Errorf("%w: %v", ErrUndecryptable, r.from)
					}
					switch d.refused(ctx, r.from) {
					case refusalRetry:
						timer.Stop()
						break waiting
					case refusalFinal:
						timer.Stop()
						return nil, r.from, fmt.Errorf("%w: %v is not in the network", ErrUnreachable, ID(dest))
					}
					continue
				}
				switch d.acknowledged(ctx, r) {
				case ackAccept:
					timer.Stop()
					o.ctr.sent.Add(1)
					return r.payload, r.from, nil
				case ackRetry:
					timer.Stop()
					break waiting
				}
			case <-ctx.Done():
				timer.Stop()
				return nil, ID{}, fmt.Errorf("%w: no acknowledgement: %w", ErrUnreachable, ctx.Err())
			case <-o.done():
				timer.Stop()
				return nil, ID{}, o.errClosed("send")
			case <-timer.C:
				if r, ok := d.silence(ctx); ok {
					o.ctr.sent.Add(1)
					return r.payload, r.from, nil
				}
				break waiting
			}
		}
		if d.via == via {
			wait = min(2*wait, 4*time.Second) // the same node again: back off
		} else {
			wait = time.Second
		}
	}
}

// maxPayload is the largest payload of a message of service: MaxMessage
// for the application's, MaxReply for a service, which may add a header of
// its own to MaxMessage bytes of its user's.
func maxPayload(service byte) int {
	if service == wire.ServiceApp {
		return MaxMessage
	}
	return MaxReply
}

// encodeMessage signs a message and splits it into route frames.
func (o *Overlay) encodeMessage(h wire.MsgHeader, payload []byte) [][]byte {
	var r wire.Route
	copy(r.Sig[:], ed25519.Sign(o.priv, h.Signed(o.net, payload)))
	r.Msg = h
	n := wire.FragmentCount(len(payload))
	r.FragCount = uint16(n)
	frames := make([][]byte, n)
	for i := range n {
		r.FragIndex = uint16(i)
		r.Chunk = payload[i*wire.MaxChunk : min((i+1)*wire.MaxChunk, len(payload))]
		frames[i] = r.Append(o.frame(wire.TypeRoute, wire.RouteOverhead+len(r.Chunk)))
	}
	return frames
}

// routeOut sends the fragments of a message this node originated: local if
// this node is the destination. It gives up (noRoute) when ctx ends, or past
// until if that is not zero (see forward).
func (o *Overlay) routeOut(ctx context.Context, until time.Time, frames [][]byte) outcome {
	results := make(chan outcome, len(frames))
	sem := make(chan struct{}, fragWindow)
	for _, f := range frames {
		r, _ := wire.ParseRoute(f[wire.HeaderLen:])
		select {
		case sem <- struct{}{}:
		case <-o.done():
			return closed
		}
		if !o.scope.Go(func(context.Context) {
			results <- o.forward(ctx, until, f, r)
			<-sem
		}) {
			return closed
		}
	}
	out := forwarded
	for range frames {
		if r := <-results; r > out {
			out = r
		}
	}
	return out
}

// forward hands a route frame (sender and hop count already set) to the best
// next hop, trying the next best when one fails, until ctx ends or, if until
// is not zero, no next hop is tried past it. Forwarding workers bound
// themselves so rather than with a context of their own: a timer less on
// every frame forwarded.
func (o *Overlay) forward(ctx context.Context, until time.Time, frame []byte, r wire.Route) outcome {
	dest := Key(r.Msg.Dest)
	if r.Msg.Mode == wire.ModeID && ID(dest) == o.self {
		return local
	}
	var exclude []ID
	if id, ok := o.directHop(r); ok {
		if o.sendReliable(ctx, id, frame, hopKey{from: id, msgID: r.Msg.MsgID, kind: r.Msg.Kind, frag: r.FragIndex}) == nil {
			return forwarded
		}
		if o.isClosed() {
			return closed
		}
	}
	for {
		if ctx.Err() != nil || !until.IsZero() && time.Now().After(until) {
			return noRoute
		}
		o.mu.Lock()
		next := o.nextHopLocked(dest, exclude)
		o.mu.Unlock()
		if next == nil {
			if r.Msg.Mode == wire.ModeKey && !o.cfg.Client {
				return local
			}
			return noRoute
		}
		o.log.Debug("route", "dest", dest, "next", next.id, "hops", r.Hops, "kind", r.Msg.Kind, "frag", r.FragIndex)
		err := o.sendReliable(ctx, next.id, frame, hopKey{from: next.id, msgID: r.Msg.MsgID, kind: r.Msg.Kind, frag: r.FragIndex})
		if err == nil {
			return forwarded
		}
		if o.isClosed() {
			return closed
		}
		o.log.Debug("next hop failed", "next", next.id, "err", err)
		o.suspect(next.id)
		exclude = append(exclude, next.id)
	}
}

// sendReliable sends frame to id, a contact or a node with a verified path,
// until it acknowledges key, it fails to twice, or ctx ends.
func (o *Overlay) sendReliable(ctx context.Context, id ID, frame []byte, key hopKey) error {
	ch := make(chan struct{}, 1)
	o.mu.Lock()
	made(&o.hopAcks)[key] = ch
	o.mu.Unlock()
	defer func() {
		o.mu.Lock()
		delete(o.hopAcks, key)
		o.mu.Unlock()
	}()
	for try := range 2 {
		o.mu.Lock()
		p, srtt, ok := o.knownPathLocked(id)
		o.mu.Unlock()
		if !ok {
			return errNoLink
		}
		rto := (&contact{srtt: srtt}).rto() << try
		if try > 0 {
			o.ctr.retransmits.Add(1)
		}
		o.sendPath(id, p, frame)
		t := time.NewTimer(rto)
		select {
		case <-ch:
			t.Stop()
			return nil
		case <-o.done():
			t.Stop()
			return o.errClosed("send")
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	return errNoLink
}

func (o *Overlay) onHopAck(sender ID, p path, body []byte) {
	a, err := wire.ParseHopAck(body)
	if err != nil {
		o.ctr.malformed.Add(1)
		return
	}
	o.touch(sender, p)
	o.mu.Lock()
	ch := o.hopAcks[hopKey{from: sender, msgID: a.MsgID, kind: a.Kind, frag: a.FragIndex}]
	o.mu.Unlock()
	if ch == nil {
		return // a late duplicate
	}
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (o *Overlay) onRoute(sender ID, p path, frame []byte) {
	r, err := wire.ParseRoute(frame[wire.HeaderLen:])
	if err != nil {
		if errors.Is(err, wire.ErrLong) {
			o.ctr.oversize.Add(1)
		} else {
			o.ctr.malformed.Add(1)
		}
		return
	}
	known := o.linked(sender, p)
	src := o.hopSource(sender, p, known)
	dest := Key(r.Msg.Dest)
	handed := r.Msg.Mode == wire.ModeKeyDirect
	if handed && (r.Hops != 0 || sender != ID(r.Msg.Origin)) {
		o.ctr.noRoute.Add(1) // only an origin hands a message to a key straight to its taker
		return
	}
	toSelf := handed || r.Msg.Mode == wire.ModeID && ID(dest) == o.self
	if o.cfg.Client && (handed || !toSelf) {
		o.ctr.client.Add(1) // a client takes messages to its ID only, and forwards none
		return
	}
	o.mu.Lock()
	next := o.tab.nextHop(dest, nil)
	// An attached client, or a node linked recently, takes a message to
	// its ID straight (forward's directHop), even from the node closest
	// to it.
	direct := r.Msg.Mode == wire.ModeID && !toSelf && next == nil && o.directLocked(ID(dest))
	o.mu.Unlock()
	if !toSelf && (next != nil || direct) && r.Hops < wire.MaxHops {
		// Forward it. A fragment that finds no worker free is dropped
		// unacknowledged: the hop that sent it tries again, then routes
		// around this node.
		cp := slices.Clone(frame)
		cp[wire.HopsOffset]++
		wire.SetSender(cp, o.self, o.cfg.Client) // a client's flag is not passed on
		rc, _ := wire.ParseRoute(cp[wire.HeaderLen:])
		if !o.scope.TryGo(o.forwards, func(ctx context.Context) {
			// The origin waits no longer than SendTimeout for its
			// acknowledgement, nor does a forwarding worker.
			switch o.forward(ctx, time.Now().Add(o.cfg.SendTimeout), cp, rc) {
			case local:
				o.deliverFragment(rc, src)
			case noRoute:
				o.ctr.noRoute.Add(1)
				o.nack(rc, src)
			}
		}) {
			return
		}
		o.ctr.forwarded.Add(1)
	}
	ack := wire.HopAck{MsgID: r.Msg.MsgID, Kind: r.Msg.Kind, FragIndex: r.FragIndex}
	o.sendPath(sender, p, ack.Append(o.frame(wire.TypeHopAck, 19)))
	if !known && !p.relayed() {
		o.maybeChallenge(sender, p)
	}
	switch {
	case r.Hops >= wire.MaxHops:
		o.ctr.noRoute.Add(1)
	case toSelf && o.probeArrived(sender, r):
	case toSelf || (next == nil && r.Msg.Mode == wire.ModeKey):
		o.deliverFragment(r, src)
	case next == nil && !direct:
		o.ctr.noRoute.Add(1)
		o.nack(r, src)
	}
}

// nack tells the origin of a data message that it cannot be delivered.
// Refusing costs a signature, so the refusals sent are bounded per minute
// (Config.Refusals), per hop the refused messages came from (src) and per
// origin they name.
func (o *Overlay) nack(r wire.Route, src source) {
	if r.Msg.Kind != wire.KindData {
		return
	}
	key := msgKey{origin: r.Msg.Origin, msgID: r.Msg.MsgID}
	o.mu.Lock()
	_, done := o.nacked.get(key)
	refused := false
	if !done {
		now := time.Now().UnixMilli()
		if _, ok := o.nacked.add(key, src, 1, now); !ok {
			refused = true
		} else if _, ok := o.nackedBy.add(key, source{id: r.Msg.Origin}, 1, now); !ok {
			o.nacked.remove(key)
			refused = true
		}
	}
	o.mu.Unlock()
	switch {
	case refused:
		o.ctr.sourceShare.Add(1)
	case !done:
		o.sendControl(wire.KindNack, r.Msg, []byte{wire.NackNoRoute})
	}
}

// sendControl routes an ack or nack for message m back to its origin.
func (o *Overlay) sendControl(kind byte, m wire.MsgHeader, payload []byte) {
	h := wire.MsgHeader{Kind: kind, Mode: wire.ModeID, Service: m.Service, Origin: o.self, Dest: m.Origin, MsgID: m.MsgID,
		Timestamp: time.Now().UnixMilli()}
	payload, err := o.seal(&h, payload) // a reply is sealed to the origin
	if err != nil {
		return // not an ID a node can own
	}
	frames := o.encodeMessage(h, payload)
	o.scope.TryGo(o.acksOut, func(ctx context.Context) {
		if o.routeOut(ctx, time.Now().Add(o.cfg.SendTimeout), frames) == local {
			for _, f := range frames {
				r, _ := wire.ParseRoute(f[wire.HeaderLen:])
				o.deliverFragment(r, source{id: o.self})
			}
		}
	})
}

// deliverFragment takes a fragment of a message addressed to this node, from
// the hop src (charged for the reassembly it starts). r's chunk may alias a
// reused buffer.
func (o *Overlay) deliverFragment(r wire.Route, src source) {
	if r.FragCount == 1 {
		o.complete(r.Msg, slices.Clone(r.Chunk), r.Sig, int(r.Hops)+1)
		return
	}
	key := msgKey{origin: r.Msg.Origin, msgID: r.Msg.MsgID, kind: r.Msg.Kind}
	o.mu.Lock()
	e, _ := o.reasm.get(key)
	if e != nil && (e.hdr != r.Msg || e.sig != r.Sig) {
		if r.Msg.Timestamp <= e.hdr.Timestamp {
			o.mu.Unlock()
			o.ctr.malformed.Add(1)
			return
		}
		// A newer signing of the same message (an ack sent again, with a
		// reply): start over with it rather than wait for the stale one.
		o.reasm.remove(key)
		e = nil
	}
	if e == nil {
		// Reassembly space is a fair share: a source that starts more
		// messages than its share loses its own oldest ones.
		e = &reassembly{hdr: r.Msg, sig: r.Sig, fragments: newFragments(int(r.Msg.Length), int(r.FragCount))}
		evicted, ok := o.reasm.add(key, src, int(r.Msg.Length), e)
		o.ctr.sourceShare.Add(uint64(evicted))
		if !ok {
			o.mu.Unlock()
			o.ctr.sourceShare.Add(1)
			return
		}
	}
	if !e.add(int(r.FragIndex), wire.MaxChunk, r.Chunk) {
		o.mu.Unlock()
		return
	}
	o.reasm.remove(key)
	o.mu.Unlock()
	o.complete(e.hdr, e.buf, e.sig, int(r.Hops)+1)
}

// complete checks a whole message and acts on it.
func (o *Overlay) complete(h wire.MsgHeader, payload []byte, sig [wire.SigLen]byte, hops int) {
	if !ed25519.Verify(h.Origin[:], h.Signed(o.net, payload), sig[:]) {
		o.ctr.forged.Add(1)
		return
	}
	if d := time.Since(time.UnixMilli(h.Timestamp)); d > o.cfg.ReplayWindow || d < -o.cfg.ReplayWindow {
		o.ctr.replayed.Add(1)
		return
	}
	payload, ok := o.open(h, payload) // seal.go
	if !ok {
		return
	}
	switch h.Kind {
	case wire.KindAck, wire.KindNack:
		o.mu.Lock()
		ch := o.acks[h.MsgID]
		o.mu.Unlock()
		if ch != nil {
			select {
			case ch <- ackResult{from: h.Origin, nack: h.Kind == wire.KindNack, payload: payload}:
			default:
			}
		}
		return
	}
	if ah := o.asyncHandler(h.Service); ah != nil && h.Service != wire.ServiceApp {
		o.handOver(ah, h, payload, hops)
		return
	}
	if h.Service != wire.ServiceApp {
		handler := o.handler(h.Service)
		if handler == nil {
			o.ctr.noRoute.Add(1)
			o.sendControl(wire.KindNack, h, []byte{wire.NackNoService})
			return
		}
		m := Message{Data: payload, From: h.Origin, To: Key(h.Dest), ByKey: h.Mode != wire.ModeID, Hops: hops, Service: h.Service}
		if reply, ok := handler(m); ok && len(reply) <= MaxReply {
			o.ctr.received.Add(1)
			o.sendControl(wire.KindAck, h, reply)
		} else {
			o.ctr.queueFull.Add(1)
		}
		return
	}
	key := msgKey{origin: h.Origin, msgID: h.MsgID}
	o.mu.Lock()
	if _, dup := o.seen.get(key); dup {
		o.mu.Unlock()
		o.ctr.replayed.Add(1)
		o.sendControl(wire.KindAck, h, nil) // the first ack may have been lost
		return
	}
	m := Message{Data: payload, From: h.Origin, To: Key(h.Dest), ByKey: h.Mode != wire.ModeID, Hops: hops}
	if !o.recv.put(m) {
		o.mu.Unlock()
		o.ctr.queueFull.Add(1)
		return
	}
	// The duplicate table is a fair share charged to the (verified)
	// origin: one that sends more than its share forgets its own
	// oldest messages, which only lets it send them again.
	forgotten, _ := o.seen.add(key, source{id: h.Origin}, 1, h.Timestamp)
	o.ctr.forgotten.Add(uint64(forgotten))
	o.mu.Unlock()
	o.ctr.received.Add(1)
	o.sendControl(wire.KindAck, h, nil)
}

// deliverLocal delivers a message this node sent to itself: to its service's
// handler, or to the receive queue. known is false for a service with no
// handler.
func (o *Overlay) deliverLocal(m Message) (reply []byte, ok, known bool) {
	return o.deliverLocalCtx(context.Background(), m)
}

// deliverLocalCtx is deliverLocal for a sender whose wait for an
// asynchronous service's answer ends with ctx.
func (o *Overlay) deliverLocalCtx(ctx context.Context, m Message) (reply []byte, ok, known bool) {
	if ah := o.asyncHandler(m.Service); ah != nil && m.Service != wire.ServiceApp {
		reply, ok = o.deliverAsyncLocal(ctx, ah, m)
		return reply, ok, true
	}
	if m.Service != wire.ServiceApp {
		handler := o.handler(m.Service)
		if handler == nil {
			return nil, false, false
		}
		reply, ok = handler(m)
		return reply, ok, true
	}
	if !o.recv.put(m) {
		o.ctr.queueFull.Add(1)
		return nil, false, true
	}
	o.ctr.received.Add(1)
	return nil, true, true
}

// Recv returns the next message delivered to this node.
func (o *Overlay) Recv(ctx context.Context) (Message, error) {
	if o.isClosed() {
		return Message{}, o.errClosed("recv")
	}
	for {
		if m, ok := o.recv.take(); ok {
			return m, nil
		}
		select {
		case <-o.recv.ready:
		case <-ctx.Done():
			return Message{}, ctx.Err()
		case <-o.done():
			return Message{}, o.errClosed("recv")
		}
	}
}

// expire drops old message state.
func (o *Overlay) expire(now time.Time) {
	horizon := now.Add(-o.cfg.ReplayWindow - time.Minute).UnixMilli()
	o.mu.Lock()
	defer o.mu.Unlock()
	o.reasm.removeIf(func(_ msgKey, e *reassembly) bool { return now.Sub(e.created) > reasmTimeout })
	o.seen.removeIf(func(_ msgKey, ts int64) bool { return ts < horizon })
	o.expireLinksLocked(now)
	nackHorizon := now.Add(-time.Minute).UnixMilli()
	o.nacked.removeIf(func(_ msgKey, ts int64) bool { return ts < nackHorizon })
	o.nackedBy.removeIf(func(_ msgKey, ts int64) bool { return ts < nackHorizon })
	o.expireAnswersLocked(now)
}
