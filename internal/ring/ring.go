// Package ring is a bounded first-in, first-out queue whose array grows as
// items wait and is let go once they have all been taken, so that an idle
// queue costs a few words, not its bound.
package ring

// MinSize is the ring's first size, and the largest array kept when it is
// empty.
const MinSize = 8

// Ring is a FIFO queue of at most Max items. Its zero value, with Max set,
// is empty and ready; it is not safe for concurrent use.
type Ring[T any] struct {
	Max        int // the bound; at least 1
	buf        []T
	head, size int
}

// Push adds v; it reports false if the ring holds Max items.
func (r *Ring[T]) Push(v T) bool {
	if r.size == len(r.buf) {
		if r.size >= r.Max {
			return false
		}
		buf := make([]T, min(max(MinSize, 2*len(r.buf)), r.Max))
		for i := range r.size {
			buf[i] = r.buf[(r.head+i)%len(r.buf)]
		}
		r.buf, r.head = buf, 0
	}
	r.buf[(r.head+r.size)%len(r.buf)] = v
	r.size++
	return true
}

// Pop takes the oldest item.
func (r *Ring[T]) Pop() (T, bool) {
	var zero T
	if r.size == 0 {
		return zero, false
	}
	v := r.buf[r.head]
	r.buf[r.head] = zero
	r.head = (r.head + 1) % len(r.buf)
	r.size--
	if r.size == 0 {
		r.head = 0
		if len(r.buf) > MinSize {
			r.buf = nil // a burst's array goes back to the heap
		}
	}
	return v, true
}

// Len returns the number of items waiting.
func (r *Ring[T]) Len() int { return r.size }

// Cap returns the length of the array the ring holds now.
func (r *Ring[T]) Cap() int { return len(r.buf) }
