package overlay

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2psock/p2psock/internal/wire"
)

// MaxReply is the largest reply a service's acknowledgement carries:
// MaxMessage, and room for a service's own header (a status byte, say).
const MaxReply = wire.MaxRouted

// answerBytes bounds the replies an overlay remembers for retransmissions
// of the messages its asynchronous handlers answered.
const answerBytes = 64 * MaxMessage

// An AsyncHandler consumes the messages of a service whose answers take
// time, such as a program's request handler. It is handed each message
// once, with the Reply to call when its answer is ready, from any
// goroutine. It must not block: it runs on the node's packet path, so it
// starts the work and returns.
type AsyncHandler func(m Message, reply Reply)

// Reply answers a message handed to an AsyncHandler. The first call counts:
// with ok true, reply (at most MaxReply bytes) rides the acknowledgement
// back to the sender; with ok false (or a longer reply) the message is
// forgotten unacknowledged, and the sender retries it.
type Reply func(reply []byte, ok bool)

// HandleAsync registers h for messages of service (1–255), in place of a
// Handler. A retransmission of a message whose answer is pending is
// dropped; once answered, the answer is remembered for the replay window
// (Config.ReplayWindow) and sent again for a retransmission, so h sees each
// message at most once. The answers remembered are bounded, and shared
// fairly among the messages' origins (each holds at most 1/SourceShare of
// each bound, and a full table forgets the oldest answers of the origin
// holding the most): in number, Config.Duplicates (an answer forgotten is
// counted in ForgottenDuplicates; past the bound of pending answers a new
// message is refused, counted in DroppedQueueFull), and in reply bytes
// (4 MiB: a reply forgotten leaves its message's retransmissions
// unanswered). Register services before Join.
func (o *Overlay) HandleAsync(service byte, h AsyncHandler) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if service != wire.ServiceApp {
		o.asyncServices.set(service, h)
	}
}

// answer is an answered message handed to an AsyncHandler.
type answer struct {
	at        time.Time
	reply     []byte // the reply, while remembered
	forgotten bool   // the reply was dropped for space
}

// answers remembers the messages handed to AsyncHandlers: those pending
// (handed over, not answered yet) and those answered, with their replies.
// Each is charged to the message's origin (a verified signer).
type answers struct {
	pending   map[msgKey]ID // handed over, to their origin
	pendingBy map[ID]int    // pending messages per origin
	done      *fairShare[msgKey, *answer]
	replies   *fairShare[msgKey, *answer] // the answers whose reply is remembered, by reply bytes
}

// newAnswers returns the tables of answers: at most duplicates answers and
// pending messages, answerBytes of replies, each origin 1/share of each.
func newAnswers(duplicates, share int, forgotten *atomic.Uint64) answers {
	as := answers{
		pending:   make(map[msgKey]ID),
		pendingBy: make(map[ID]int),
		done:      newFairShare[msgKey, *answer](duplicates, share, true),
		replies:   newFairShare[msgKey, *answer](answerBytes, share, true),
	}
	as.done.evicted = func(k msgKey, _ *answer) {
		as.replies.remove(k)
		forgotten.Add(1)
	}
	as.replies.evicted = func(_ msgKey, a *answer) { a.reply, a.forgotten = nil, true }
	return as
}

// pendingShare is the number of pending messages one origin may have.
func (o *Overlay) pendingShare() int { return max(o.cfg.Duplicates/max(o.cfg.SourceShare, 1), 1) }

func (o *Overlay) asyncHandler(service byte) AsyncHandler {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.asyncServices.get(service)
}

// handOver gives a verified, opened data message to its service's
// AsyncHandler, or answers a retransmission of one.
func (o *Overlay) handOver(ah AsyncHandler, h wire.MsgHeader, payload []byte, hops int) {
	key := msgKey{origin: h.Origin, msgID: h.MsgID}
	as := &o.answers
	o.mu.Lock()
	_, pending := as.pending[key]
	if a, done := as.done.get(key); pending || done {
		var reply []byte
		answered := done && !a.forgotten
		if answered {
			reply = a.reply
		}
		o.mu.Unlock()
		o.ctr.replayed.Add(1)
		if answered {
			o.sendControl(wire.KindAck, h, reply)
		}
		return
	}
	if !o.pendLocked(key) {
		o.mu.Unlock()
		o.ctr.queueFull.Add(1)
		return
	}
	o.mu.Unlock()
	m := Message{Data: payload, From: h.Origin, To: Key(h.Dest), ByKey: h.Mode != wire.ModeID, Hops: hops, Service: h.Service}
	var once sync.Once
	ah(m, func(reply []byte, ok bool) {
		once.Do(func() { o.sendAnswer(key, h, reply, ok) })
	})
}

// pendLocked adds key to the pending messages, within the bound of all and
// its origin's share; false if it is refused.
func (o *Overlay) pendLocked(key msgKey) bool {
	as := &o.answers
	if len(as.pending) >= o.cfg.Duplicates || as.pendingBy[key.origin] >= o.pendingShare() {
		return false
	}
	as.pending[key] = key.origin
	as.pendingBy[key.origin]++
	return true
}

// unpendLocked removes key from the pending messages; false if it was not
// there (the overlay closed, or it expired).
func (o *Overlay) unpendLocked(key msgKey) bool {
	as := &o.answers
	origin, ok := as.pending[key]
	if !ok {
		return false
	}
	delete(as.pending, key)
	if as.pendingBy[origin]--; as.pendingBy[origin] <= 0 {
		delete(as.pendingBy, origin)
	}
	return true
}

// sendAnswer sends an AsyncHandler's answer, and remembers it.
func (o *Overlay) sendAnswer(key msgKey, h wire.MsgHeader, reply []byte, ok bool) {
	if len(reply) > MaxReply {
		o.ctr.oversize.Add(1)
		ok = false
	}
	o.mu.Lock()
	current := o.unpendLocked(key)
	if !ok {
		o.mu.Unlock()
		if len(reply) <= MaxReply {
			o.ctr.queueFull.Add(1)
		}
		return
	}
	if current {
		o.rememberLocked(key, h.Origin, reply)
	}
	o.mu.Unlock()
	o.ctr.received.Add(1)
	o.sendControl(wire.KindAck, h, reply)
}

// rememberLocked keeps the answer reply to the message key from origin,
// within the tables' bounds and origin's shares of them.
func (o *Overlay) rememberLocked(key msgKey, origin ID, reply []byte) {
	as := &o.answers
	a := &answer{at: time.Now(), forgotten: true}
	src := source{id: origin}
	if _, ok := as.done.add(key, src, 1, a); !ok {
		return
	}
	if _, ok := as.replies.add(key, src, max(len(reply), 1), a); ok {
		a.reply, a.forgotten = reply, false
	}
}

// expireAnswersLocked forgets the answers older than the replay window:
// retransmissions of their messages are dropped as stale anyway.
func (o *Overlay) expireAnswersLocked(now time.Time) {
	horizon := now.Add(-o.cfg.ReplayWindow - time.Minute)
	old := func(_ msgKey, a *answer) bool { return a.at.Before(horizon) }
	o.answers.done.removeIf(old)
	o.answers.replies.removeIf(old)
}

// deliverAsyncLocal hands a message this node sent to itself to an
// AsyncHandler and waits for its answer.
func (o *Overlay) deliverAsyncLocal(ctx context.Context, ah AsyncHandler, m Message) (reply []byte, ok bool) {
	type result struct {
		reply []byte
		ok    bool
	}
	ch := make(chan result, 1)
	var once sync.Once
	ah(m, func(reply []byte, ok bool) {
		once.Do(func() { ch <- result{reply, ok && len(reply) <= MaxReply} })
	})
	select {
	case r := <-ch:
		return r.reply, r.ok
	case <-ctx.Done():
		return nil, false
	case <-o.done():
		return nil, false
	}
}
