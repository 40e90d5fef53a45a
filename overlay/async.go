package overlay

import (
	"context"
	"sync"
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
// message at most once. The answers remembered are bounded in number
// (Config.Duplicates: past it the oldest answered is forgotten, counted in
// ForgottenDuplicates) and in bytes (4 MiB: past it the oldest replies are
// dropped, and retransmissions of their messages go unanswered). Register
// services before Join.
func (o *Overlay) HandleAsync(service byte, h AsyncHandler) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if service != wire.ServiceApp {
		o.asyncServices[service] = h
	}
}

// answer is the state of a message handed to an AsyncHandler.
type answer struct {
	at        time.Time
	done      bool   // answered
	reply     []byte // the reply, while remembered
	forgotten bool   // answered, and the reply dropped for space
}

// answers remembers the messages handed to AsyncHandlers, in arrival order.
type answers struct {
	m     map[msgKey]*answer
	order []msgKey
	bytes int
}

func (o *Overlay) asyncHandler(service byte) AsyncHandler {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.asyncServices[service]
}

// handOver gives a verified, opened data message to its service's
// AsyncHandler, or answers a retransmission of one.
func (o *Overlay) handOver(ah AsyncHandler, h wire.MsgHeader, payload []byte, hops int) {
	key := msgKey{origin: h.Origin, msgID: h.MsgID}
	o.mu.Lock()
	if a := o.answers.m[key]; a != nil {
		reply, done := a.reply, a.done && !a.forgotten
		o.mu.Unlock()
		o.ctr.replayed.Add(1)
		if done {
			o.sendControl(wire.KindAck, h, reply)
		}
		return
	}
	if !o.makeRoomLocked() {
		o.mu.Unlock()
		o.ctr.queueFull.Add(1)
		return
	}
	a := &answer{at: time.Now()}
	o.answers.m[key] = a
	o.answers.order = append(o.answers.order, key)
	o.mu.Unlock()
	m := Message{Data: payload, From: h.Origin, To: Key(h.Dest), ByKey: h.Mode != wire.ModeID, Hops: hops, Service: h.Service}
	var once sync.Once
	ah(m, func(reply []byte, ok bool) {
		once.Do(func() { o.sendAnswer(key, a, h, reply, ok) })
	})
}

// makeRoomLocked makes room for one more answer, forgetting the oldest
// answered one if the table is full; false if every one is pending.
func (o *Overlay) makeRoomLocked() bool {
	as := &o.answers
	for tries := len(as.order); len(as.m) >= o.cfg.Duplicates && tries > 0; tries-- {
		k := as.order[0]
		as.order = as.order[1:]
		a := as.m[k]
		switch {
		case a == nil:
		case !a.done:
			as.order = append(as.order, k) // pending: keep it
		default:
			o.forgetLocked(k, a)
			o.ctr.forgotten.Add(1)
		}
	}
	return len(as.m) < o.cfg.Duplicates
}

func (o *Overlay) forgetLocked(k msgKey, a *answer) {
	o.answers.bytes -= len(a.reply)
	delete(o.answers.m, k)
}

// sendAnswer sends an AsyncHandler's answer, and remembers it.
func (o *Overlay) sendAnswer(key msgKey, a *answer, h wire.MsgHeader, reply []byte, ok bool) {
	if len(reply) > MaxReply {
		o.ctr.oversize.Add(1)
		ok = false
	}
	o.mu.Lock()
	current := o.answers.m[key] == a
	if !ok {
		if current {
			o.forgetLocked(key, a)
		}
		o.mu.Unlock()
		if len(reply) <= MaxReply {
			o.ctr.queueFull.Add(1)
		}
		return
	}
	if current {
		a.done = true
		o.keepReplyLocked(a, reply)
	}
	o.mu.Unlock()
	o.ctr.received.Add(1)
	o.sendControl(wire.KindAck, h, reply)
}

// keepReplyLocked remembers a's reply within answerBytes, dropping the
// oldest replies to make room.
func (o *Overlay) keepReplyLocked(a *answer, reply []byte) {
	as := &o.answers
	for i := 0; i < len(as.order) && as.bytes+len(reply) > answerBytes; i++ {
		if old := as.m[as.order[i]]; old != nil && old.reply != nil {
			as.bytes -= len(old.reply)
			old.reply, old.forgotten = nil, true
		}
	}
	if as.bytes+len(reply) > answerBytes {
		a.forgotten = true
		return
	}
	a.reply = reply
	as.bytes += len(reply)
}

// expireAnswersLocked forgets the answers older than the replay window:
// retransmissions of their messages are dropped as stale anyway.
func (o *Overlay) expireAnswersLocked(now time.Time) {
	as := &o.answers
	horizon := now.Add(-o.cfg.ReplayWindow - time.Minute)
	for len(as.order) > 0 {
		k := as.order[0]
		a := as.m[k]
		if a != nil && a.at.After(horizon) {
			break
		}
		as.order = as.order[1:]
		if a != nil {
			o.forgetLocked(k, a)
		}
	}
	if len(as.order) == 0 {
		as.order = nil // let the backing array go
	}
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
