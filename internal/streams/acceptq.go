package streams

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/p2psock/p2psock/overlay"
)

// acceptQueue holds the streams peers opened until Accept takes them. It is
// bounded overall and per peer, and holds no goroutine: a stream waits as an
// entry, and one timer (armed for the oldest entry) resets those that waited
// longer than the unaccepted timeout. When the queue is full, a stream from
// a peer with fewer waiting streams than the peer with the most takes the
// place of that peer's newest stream, so that one peer cannot keep the
// others' streams out; otherwise it is refused.
type acceptQueue struct {
	max, perPeer int
	timeout      time.Duration
	refuse       func(s *Stream, reason dropReason) // resets a stream the queue drops

	mu      sync.Mutex
	entries []queued
	count   map[overlay.ID]int
	timer   *time.Timer
	closed  bool
	ready   chan struct{} // holds a token while entries is not empty
}

type queued struct {
	s  *Stream
	at time.Time
}

func newAcceptQueue(max, perPeer int, timeout time.Duration, refuse func(*Stream, dropReason)) *acceptQueue {
	return &acceptQueue{max: max, perPeer: perPeer, timeout: timeout, refuse: refuse,
		count: make(map[overlay.ID]int), ready: make(chan struct{}, 1)}
}

// push queues s, or refuses it (or the stream it displaces) by reason.
func (q *acceptQueue) push(s *Stream) {
	peer := s.Peer()
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		q.refuse(s, dropClosing)
		return
	}
	if q.count[peer] >= q.perPeer {
		q.mu.Unlock()
		q.refuse(s, dropPeerQueueFull)
		return
	}
	var displaced *Stream
	if len(q.entries) >= q.max {
		displaced = q.displaceLocked(q.count[peer] + 1)
		if displaced == nil {
			q.mu.Unlock()
			q.refuse(s, dropQueueFull)
			return
		}
	}
	q.entries = append(q.entries, queued{s: s, at: time.Now()})
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

// displaceLocked removes the newest stream of the peer with the most
// waiting streams if that peer has more than want, and returns it.
func (q *acceptQueue) displaceLocked(want int) *Stream {
	var top overlay.ID
	most := 0
	for id, n := range q.count {
		if n > most {
			top, most = id, n
		}
	}
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

func (q *acceptQueue) signalLocked() {
	if len(q.entries) == 0 {
		return
	}
	select {
	case q.ready <- struct{}{}:
	default:
	}
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

// pop takes the oldest stream, waiting for one until ctx ends or the queue
// closes.
func (q *acceptQueue) pop(ctx context.Context, closing <-chan struct{}) (*Stream, error) {
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return nil, net.ErrClosed
		}
		if len(q.entries) > 0 {
			s := q.entries[0].s
			q.entries[0] = queued{}
			q.entries = q.entries[1:]
			q.decLocked(s.Peer())
			if len(q.entries) == 0 && q.timer != nil {
				q.timer.Stop()
			}
			q.signalLocked() // another Accept may take the next one
			q.mu.Unlock()
			return s, nil
		}
		q.mu.Unlock()
		select {
		case <-q.ready:
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
}
