package overlay

import (
	"sync"

	"github.com/p2psock/p2psock/internal/ring"
)

// recvQueue holds the received messages until Recv takes them: at most
// Config.RecvQueue, in an array that grows as they wait and is let go once
// they are taken (an idle node holds none).
type recvQueue struct {
	mu    sync.Mutex
	q     ring.Ring[Message]
	ready chan struct{} // holds a token while messages wait
}

func newRecvQueue(max int) *recvQueue {
	return &recvQueue{q: ring.Ring[Message]{Max: max}, ready: make(chan struct{}, 1)}
}

// put queues m; it reports false if the queue is full.
func (r *recvQueue) put(m Message) bool {
	r.mu.Lock()
	ok := r.q.Push(m)
	r.mu.Unlock()
	if ok {
		r.signal()
	}
	return ok
}

// take returns the oldest message, if one waits; if more wait, another
// Recv is woken for them.
func (r *recvQueue) take() (Message, bool) {
	r.mu.Lock()
	m, ok := r.q.Pop()
	more := r.q.Len() > 0
	r.mu.Unlock()
	if more {
		r.signal()
	}
	return m, ok
}

func (r *recvQueue) signal() {
	select {
	case r.ready <- struct{}{}:
	default:
	}
}
