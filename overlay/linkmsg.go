package overlay

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/p2psock/p2psock/internal/wire"
)

// Link messages go one hop, to a node this one has a verified link with. They
// cost far less than routed messages: no signature, a 15-byte header per
// fragment, and one acknowledgement per message. Their sender is the node at
// the other end of the link, as the link layer knows it (the same trust as
// hop acknowledgements): a service that needs the origin of what it carries
// proven signs it itself, as the group service's envelopes are.

// The state a link message leaves behind is charged to its peer: partial
// messages (Config.LinkReassembly bytes) and completed ones remembered for
// duplicate detection are fair shares (fairshare.go), so that one linked
// peer cannot crowd out the others.
const (
	linkReasmTimeout = 10 * time.Second
	maxLinkDone      = 1 << 16 // completed link messages remembered for duplicate detection
	linkDoneKeep     = 30 * time.Second
	linkTries        = 4
)

// LinkHandler consumes the link messages of a service. It runs on the node's
// packet path and must not block. It returns false to refuse the message
// unacknowledged (the sender retries). Each message is handed over once.
type LinkHandler func(from ID, data []byte) (ok bool)

type linkKey struct {
	peer  ID
	msgID [8]byte
}

type linkReassembly struct {
	service byte
	fragments
}

// HandleLink registers h for the link messages of service.
func (o *Overlay) HandleLink(service byte, h LinkHandler) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.linkHandlers.set(service, h)
}

// SendLink sends payload to id's handler of service, one hop over this node's
// verified link with id, and returns once id has acknowledged all of it. It
// sends the message up to four times, on the retransmission timeout of the
// link (the second time only its last fragment, which is acknowledged again
// if the message arrived); it fails with ErrNoLink when this node has no verified link with id,
// and with ErrUnreachable when id does not acknowledge.
func (o *Overlay) SendLink(ctx context.Context, id ID, service byte, payload []byte) error {
	if o.isClosed() {
		return o.errClosed("send")
	}
	if len(payload) > MaxMessage {
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrMessageTooLarge, len(payload), MaxMessage)
	}
	var key linkKey
	key.peer = id
	rand.Read(key.msgID[:])
	n := wire.LinkFragmentCount(len(payload))
	frames := make([][]byte, n)
	for i := range n {
		l := wire.Link{Service: service, MsgID: key.msgID, FragIndex: uint8(i), FragCount: uint8(n), Length: uint32(len(payload)),
			Chunk: payload[i*wire.MaxLinkChunk : min((i+1)*wire.MaxLinkChunk, len(payload))]}
		frames[i] = l.Append(o.frame(wire.TypeLink, wire.LinkOverhead+len(l.Chunk)))
	}
	ch := make(chan struct{}, 1)
	o.mu.Lock()
	made(&o.linkAcks)[key] = ch
	o.mu.Unlock()
	defer func() {
		o.mu.Lock()
		delete(o.linkAcks, key)
		o.mu.Unlock()
	}()
	for try := range linkTries {
		o.mu.Lock()
		p, srtt, ok := o.knownPathLocked(id)
		o.mu.Unlock()
		if !ok {
			return fmt.Errorf("%w: %v", ErrNoLink, id)
		}
		if try > 0 {
			o.ctr.retransmits.Add(1)
		}
		send := frames
		if try == 1 && len(frames) > 1 {
			// Most often the message arrived and its acknowledgement was
			// lost (a node taking many acknowledgements at once drops some
			// at its socket): the last fragment alone makes the receiver
			// acknowledge again. The tries after it send every fragment.
			send = frames[len(frames)-1:]
		}
		sent := time.Now()
		for _, f := range send {
			o.sendPath(id, p, f)
		}
		t := time.NewTimer((&contact{srtt: srtt}).rto() << try)
		select {
		case <-ch:
			t.Stop()
			if try == 0 { // Karn: a retransmitted message's ack says nothing of the RTT
				o.sampleRTT(id, p, time.Since(sent))
			}
			return nil
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w: no acknowledgement: %w", ErrUnreachable, ctx.Err())
		case <-o.done():
			t.Stop()
			return o.errClosed("send")
		case <-t.C:
		}
	}
	return fmt.Errorf("%w: %v does not acknowledge", ErrUnreachable, id)
}

// sampleRTT folds a round-trip time measured over path p into the smoothed
// RTT of the link with id (weight 1/8, as TCP does), so that retransmission
// timeouts follow the link's load.
func (o *Overlay) sampleRTT(id ID, p path, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if c := o.tab.get(id); c != nil && c.p == p {
		c.srtt += (d - c.srtt) / 8
	} else if vp, ok := o.paths[id]; ok && vp.p == p {
		vp.srtt += (d - vp.srtt) / 8
		o.paths[id] = vp
	}
}

func (o *Overlay) onLink(sender ID, p path, body []byte) {
	l, err := wire.ParseLink(body)
	if err != nil {
		if errors.Is(err, wire.ErrLong) {
			o.ctr.oversize.Add(1)
		} else {
			o.ctr.malformed.Add(1)
		}
		return
	}
	if !o.linked(sender, p) {
		// Not signed: only a verified link vouches for the sender. Verify
		// this one, so that the sender's next try is taken.
		o.ctr.unknownPeer.Add(1)
		if !p.relayed() {
			o.maybeChallenge(sender, p)
		}
		return
	}
	key := linkKey{peer: sender, msgID: l.MsgID}
	ack := func() { o.sendPath(sender, p, wire.LinkAck{MsgID: l.MsgID}.Append(o.frame(wire.TypeLinkAck, 8))) }
	o.mu.Lock()
	h := o.linkHandlers.get(l.Service)
	if at, dup := o.linkDone.get(key); dup {
		o.mu.Unlock()
		o.ctr.replayed.Add(1)
		if !at.IsZero() {
			ack() // the first acknowledgement may have been lost
		}
		return
	}
	if h == nil {
		o.mu.Unlock()
		o.ctr.noRoute.Add(1)
		return
	}
	var payload []byte
	if l.FragCount == 1 {
		payload = slices.Clone(l.Chunk)
	} else {
		e, _ := o.linkReasm.get(key)
		if e != nil && (e.service != l.Service || len(e.buf) != int(l.Length)) {
			o.mu.Unlock()
			o.ctr.malformed.Add(1)
			return
		}
		if e == nil {
			e = &linkReassembly{service: l.Service, fragments: newFragments(int(l.Length), int(l.FragCount))}
			evicted, ok := o.linkReasm.add(key, source{id: sender}, int(l.Length), e)
			o.ctr.sourceShare.Add(uint64(evicted))
			if !ok {
				o.mu.Unlock()
				o.ctr.sourceShare.Add(1)
				return
			}
		}
		if !e.add(int(l.FragIndex), wire.MaxLinkChunk, l.Chunk) {
			o.mu.Unlock()
			return
		}
		o.linkReasm.remove(key)
		payload = e.buf
	}
	// Pending (zero time) while the handler decides: a copy arriving
	// meanwhile is dropped, not acknowledged, as the handler may refuse.
	forgotten, _ := o.linkDone.add(key, source{id: sender}, 1, time.Time{})
	o.ctr.forgotten.Add(uint64(forgotten))
	o.mu.Unlock()
	if !h(sender, payload) {
		o.mu.Lock()
		o.linkDone.remove(key)
		o.mu.Unlock()
		o.ctr.queueFull.Add(1)
		return
	}
	o.mu.Lock()
	if _, pending := o.linkDone.get(key); pending {
		o.linkDone.add(key, source{id: sender}, 1, time.Now())
	}
	o.mu.Unlock()
	o.ctr.received.Add(1)
	ack()
}

func (o *Overlay) onLinkAck(sender ID, p path, body []byte) {
	a, err := wire.ParseLinkAck(body)
	if err != nil {
		o.ctr.malformed.Add(1)
		return
	}
	o.touch(sender, p)
	o.mu.Lock()
	ch := o.linkAcks[linkKey{peer: sender, msgID: a.MsgID}]
	o.mu.Unlock()
	if ch == nil {
		o.ctr.replayed.Add(1) // a late duplicate, or an acknowledgement nobody asked for
		return
	}
	select {
	case ch <- struct{}{}:
	default:
	}
}

// expireLinksLocked drops old link-message state.
func (o *Overlay) expireLinksLocked(now time.Time) {
	o.linkReasm.removeIf(func(_ linkKey, e *linkReassembly) bool { return now.Sub(e.created) > linkReasmTimeout })
	o.linkDone.removeIf(func(_ linkKey, at time.Time) bool { return !at.IsZero() && now.Sub(at) > linkDoneKeep })
}

// Peer is how this node reaches a node it has a verified link with.
type Peer struct {
	ID     ID
	Addr   netip.AddrPort // its address on a direct link; invalid on a relayed one
	Public bool           // it reported itself directly reachable (contacts only)
}

// PeerInfo returns how this node reaches id, if it has a verified link
// with it.
func (o *Overlay) PeerInfo(id ID) (Peer, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	p, _, ok := o.knownPathLocked(id)
	if !ok {
		return Peer{}, false
	}
	pr := Peer{ID: id}
	if !p.relayed() {
		pr.Addr = p.addr
	}
	if c := o.tab.get(id); c != nil {
		pr.Public = c.public
	}
	return pr, true
}

// LinkWith makes sure this node has a verified link with peer, as the contact
// introducer described it: a direct ping to its address, a hole punch the
// introducer arranges, and as a last resort a path the introducer relays. It
// reports whether the link is direct.
func (o *Overlay) LinkWith(ctx context.Context, peer Peer, introducer ID) (direct bool, err error) {
	if o.isClosed() {
		return false, o.errClosed("link")
	}
	p, _, err := o.link(ctx, candidate{id: peer.ID, addr: peer.Addr, public: peer.Public, introducer: introducer})
	if err != nil {
		return false, err
	}
	return !p.relayed(), nil
}
