package streams

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/p2psock/p2psock/overlay"
)

// acceptQueue holds the streams peers opened until Accept takes them: the
// streams of the default service (tag zero) and those of the named services
// listening (ServiceTag), in one queue. It is bounded overall and per peer,
// whatever the service, and holds no goroutine: a stream waits as an entry,
// and one timer (armed for the oldest entry) resets those that waited
// longer than the unaccepted timeout. When the queue is full, a stream from
// a peer with fewer waiting streams than the peer with the most takes the
// place of that peer's newest stream, so that one peer cannot keep the
// others' streams out; otherwise it is refused.
type acceptQueue struct {
	max, perPeer int
	timeout      time.Duration
	refuse       func(s *Stream, reason dropReason) // resets a stream the queue drops

	mu        sync.Mutex
	entries   []queued
	count     map[overlay.ID]int
	listening map[ServiceTag]bool // the named services whose streams are taken
	timer     *time.Timer
	closed    bool
	wake      chan struct{} // closed (and replaced) when an entry arrives or a service stops listening
}

// ServiceTag names the service a stream is opened to: the hash of a named
// service's name (docs/PROTOCOL.md, §12.8), or zero for the default
// service's streams (Dial and Accept).
type ServiceTag [8]byte

type queued struct {
	s   *Stream
	tag ServiceTag
	at  time.Time
}

func newAcceptQueue(max, perPeer int, timeout time.Duration, refuse func(*Stream, dropReason)) *acceptQueue {
	return &acceptQueue{max: max, perPeer: perPeer, timeout: timeout, refuse: refuse,
		count: make(map[overlay.ID]int), listening: make(map[ServiceTag]bool), wake: make(chan struct{})}
}

// listen makes the queue take streams to the named service tag; false if
// it already does (or tag is zero, or the queue closed).
func (q *acceptQueue) listen(tag ServiceTag) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || tag == (ServiceTag{}) || q.listening[tag] {
		return false
	}
	q.listening[tag] = true
	return true
}

// unlisten stops taking streams to the named service tag: those waiting
// are refused, and pending pops of it fail.
func (q *acceptQueue) unlisten(tag ServiceTag) {
	q.mu.Lock()
	if !q.listening[tag] {
		q.mu.Unlock()
		return
	}
	delete(q.listening, tag)
	var gone []*Stream
	kept := q.entries[:0]
	for _, e := range q.entries {
		if e.tag == tag {
			gone = append(gone, e.s)
			q.decLocked(e.s.Peer())
		} else {
			kept = append(kept, e)
		}
	}
	clear(q.entries[len(kept):])
	q.entries = kept
	q.signalLocked()
	q.mu.Unlock()
	for _, s := range gone {
		q.refuse(s, dropClosing)
	}
}

// push queues s, a stream to the service tag, or refuses it (or the
// stream it displaces) by reason.
func (q *acceptQueue) push(s *Stream, tag ServiceTag) {
	peer := s.Peer()
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		q.refuse(s, dropClosing)
		return
	}
	if tag != (ServiceTag{}) && !q.listening[tag] {
		q.mu.Unlock()
		q.refuse(s, dropNoService)
		return
	}
	if q.count[peer] >= q.perPeer {
		q.mu.Unlock()
		q.refuse(s, dropPeerQueueFull)
		return
	}
	full := len(q.entries) >= q.max
	if full && !q.canDisplaceLocked(q.count[peer]+1) {
		q.mu.Unlock()
		q.refuse(s, dropQueueFull)
		return
	}
	// A stream to a named service is answered once it has its place, and
	// before Accept can take it (the answer comes before the application's
	// bytes); the answer does not block.
	if tag != (ServiceTag{}) && !s.answerTaken() {
		q.mu.Unlock()
		q.refuse(s, dropClosing)
		return
	}
	var displaced *Stream
	if full {
		displaced = q.displaceLocked(q.count[peer] + 1)
	}
	q.entries = append(q.entries, queued{s: s, tag: tag, at: time.Now()})
	q.count[peer]++
	if len(q.entries) == 1 {
		q.armLocked()
	}
	q.signalLocked()
	q.mu.Unlock()
	if displaced != nil {
		q.refuse(displaced, dropQueueFull)
	}
}

// topLocked returns the peer with the most waiting streams, and their
// number.
func (q *acceptQueue) topLocked() (top overlay.ID, most int) {
	for id, n := range q.count {
		if n > most {
			top, most = id, n
		}
	}
	return top, most
}

// canDisplaceLocked reports whether displaceLocked(want) would find a
// stream.
func (q *acceptQueue) canDisplaceLocked(want int) bool {
	_, most := q.topLocked()
	return most > want
}

// displaceLocked removes the newest stream of the peer with the most
// waiting streams if that peer has more than want, and returns it.
func (q *acceptQueue) displaceLocked(want int) *Stream {
	top, most := q.topLocked()
	if most <= want {
		return nil
	}
	for i := len(q.entries) - 1; i >= 0; i-- {
		if q.entries[i].s.Peer() == top {
			s := q.entries[i].s
			q.entries = append(q.entries[:i], q.entries[i+1:]...)
			q.decLocked(top)
			return s
		}
	}
	return nil
}

func (q *acceptQueue) decLocked(peer overlay.ID) {
	if q.count[peer]--; q.count[peer] <= 0 {
		delete(q.count, peer)
	}
}

// signalLocked wakes every pending pop, to look at the entries again.
func (q *acceptQueue) signalLocked() {
	close(q.wake)
	q.wake = make(chan struct{})
}

// armLocked sets the timer for the oldest entry's expiry.
func (q *acceptQueue) armLocked() {
	if len(q.entries) == 0 || q.closed {
		return
	}
	d := time.Until(q.entries[0].at.Add(q.timeout))
	if q.timer == nil {
		q.timer = time.AfterFunc(d, q.expire)
	} else {
		q.timer.Reset(d)
	}
}

// expire resets the streams that waited longer than the timeout.
func (q *acceptQueue) expire() {
	q.mu.Lock()
	now := time.Now()
	var old []*Stream
	for len(q.entries) > 0 && now.Sub(q.entries[0].at) >= q.timeout {
		s := q.entries[0].s
		q.entries = q.entries[1:]
		q.decLocked(s.Peer())
		old = append(old, s)
	}
	q.armLocked()
	q.mu.Unlock()
	for _, s := range old {
		q.refuse(s, dropUnaccepted)
	}
}

// pop takes the oldest stream to the service tag, waiting for one until
// ctx ends, the queue closes, or (for a named service) the service stops
// listening.
func (q *acceptQueue) pop(ctx context.Context, closing <-chan struct{}, tag ServiceTag) (*Stream, error) {
	for {
		q.mu.Lock()
		if q.closed || (tag != (ServiceTag{}) && !q.listening[tag]) {
			q.mu.Unlock()
			return nil, net.ErrClosed
		}
		for i, e := range q.entries {
			if e.tag != tag {
				continue
			}
			last := len(q.entries) - 1
			copy(q.entries[i:], q.entries[i+1:])
			q.entries[last] = queued{} // no pointer kept past the end
			q.entries = q.entries[:last]
			q.decLocked(e.s.Peer())
			if len(q.entries) == 0 && q.timer != nil {
				q.timer.Stop()
			}
			q.mu.Unlock()
			return e.s, nil
		}
		wake := q.wake
		q.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-closing:
			return nil, net.ErrClosed
		}
	}
}

// len returns the number of waiting streams.
func (q *acceptQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.entries)
}

// close empties the queue (Engine.Close closes the streams that were in
// it, with the connections' other open streams); later pushes are refused.
func (q *acceptQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	if q.timer != nil {
		q.timer.Stop()
	}
	q.entries = nil
	clear(q.count)
	clear(q.listening)
	q.signalLocked()
}
