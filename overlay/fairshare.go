package overlay

import (
	"container/heap"
	"container/list"
	"net/netip"
)

// A fair share is a bounded table whose entries are each charged to the
// source they came from, so that no source can fill it: one source holds at
// most a fraction of the capacity (a source over its share loses its own
// oldest entries first), and when the table is full the entries of the
// heaviest source go first. The duplicate table, route reassembly, link
// reassembly and the refusals sent are fair shares; a flood then costs the
// flooder its own entries, not everyone else's.

// source is what a table entry is charged to: the node it came from (a
// contact, a relay, or the verified origin of a signed message), or for a
// stranger the subnet of its address (Subnet), so that one machine with many
// identities counts once.
type source struct {
	id     ID
	subnet netip.Prefix
}

// hopSource is the source charged for a frame that arrived over p from
// sender: the relay of a relayed path, sender itself if it is linked on p,
// and otherwise (a stranger) the subnet of p's address.
func (o *Overlay) hopSource(sender ID, p path, linked bool) source {
	switch {
	case p.relayed():
		return source{id: p.relay()}
	case linked:
		return source{id: sender}
	default:
		return source{subnet: Subnet(p.addr.Addr())}
	}
}

// fairShare is a bounded table of values keyed by K, each entry charged a
// cost to a source. It is not safe for concurrent use (the overlay's mutex
// guards every one).
type fairShare[K comparable, V any] struct {
	capacity int // total cost held at most
	share    int // cost one source holds at most
	evict    bool
	evicted  func(k K, v V) // if set, called for each entry evicted to make room
	used     int
	entries  map[K]*fsEntry[K, V]
	sources  map[source]*fsSource[K, V]
	heavy    fsHeap[K, V] // sources, heaviest first
}

type fsEntry[K comparable, V any] struct {
	key  K
	val  V
	cost int
	src  *fsSource[K, V]
	elem *list.Element
}

type fsSource[K comparable, V any] struct {
	src   source
	used  int
	order list.List // of *fsEntry, oldest first
	index int       // in the heap
}

// newFairShare returns a table of capacity (total cost) where one source
// holds at most capacity/fraction. With evict, an entry that does not fit
// evicts older entries (its source's own first, then the heaviest
// source's); without, it is refused.
func newFairShare[K comparable, V any](capacity, fraction int, evict bool) *fairShare[K, V] {
	capacity = max(capacity, 1)
	return &fairShare[K, V]{
		capacity: capacity,
		share:    max(capacity/max(fraction, 1), 1),
		evict:    evict,
	}
}

// get returns the value of k.
func (f *fairShare[K, V]) get(k K) (V, bool) {
	e, ok := f.entries[k]
	if !ok {
		var zero V
		return zero, false
	}
	return e.val, true
}

// len returns the number of entries.
func (f *fairShare[K, V]) len() int { return len(f.entries) }

// cost returns the total cost held.
func (f *fairShare[K, V]) cost() int { return f.used }

// sourceCost returns the cost charged to src.
func (f *fairShare[K, V]) sourceCost(src source) int {
	if s := f.sources[src]; s != nil {
		return s.used
	}
	return 0
}

// add inserts (or replaces) k with cost charged to src. It returns how many
// entries it evicted to make room, and ok false if the entry was refused: its
// cost exceeds a source's share, or (without eviction) its source or the
// table is full.
func (f *fairShare[K, V]) add(k K, src source, cost int, v V) (evicted int, ok bool) {
	f.remove(k)
	if cost > f.share {
		return 0, false
	}
	s := f.sources[src]
	if !f.evict && ((s != nil && s.used+cost > f.share) || f.used+cost > f.capacity) {
		return 0, false
	}
	for s != nil && s.used+cost > f.share {
		f.evict1(s.order.Front().Value.(*fsEntry[K, V]))
		evicted++
		s = f.sources[src] // gone once its last entry is
	}
	for f.used+cost > f.capacity {
		f.evict1(f.heavy[0].order.Front().Value.(*fsEntry[K, V]))
		evicted++
	}
	s = f.sources[src]
	if s == nil {
		s = &fsSource[K, V]{src: src}
		made(&f.sources)[src] = s
		heap.Push(&f.heavy, s)
	}
	e := &fsEntry[K, V]{key: k, val: v, cost: cost, src: s}
	e.elem = s.order.PushBack(e)
	made(&f.entries)[k] = e
	s.used += cost
	f.used += cost
	heap.Fix(&f.heavy, s.index)
	return evicted, true
}

// remove deletes k and returns its value.
func (f *fairShare[K, V]) remove(k K) (V, bool) {
	e, ok := f.entries[k]
	if !ok {
		var zero V
		return zero, false
	}
	f.removeEntry(e)
	return e.val, true
}

// evict1 removes e to make room, and tells f.evicted.
func (f *fairShare[K, V]) evict1(e *fsEntry[K, V]) {
	f.removeEntry(e)
	if f.evicted != nil {
		f.evicted(e.key, e.val)
	}
}

func (f *fairShare[K, V]) removeEntry(e *fsEntry[K, V]) {
	delete(f.entries, e.key)
	s := e.src
	s.order.Remove(e.elem)
	s.used -= e.cost
	f.used -= e.cost
	if s.order.Len() == 0 {
		heap.Remove(&f.heavy, s.index)
		delete(f.sources, s.src)
		return
	}
	heap.Fix(&f.heavy, s.index)
}

// removeIf deletes every entry for which drop returns true.
func (f *fairShare[K, V]) removeIf(drop func(k K, v V) bool) {
	for k, e := range f.entries {
		if drop(k, e.val) {
			f.removeEntry(e)
		}
	}
}

// fsHeap orders sources heaviest first.
type fsHeap[K comparable, V any] []*fsSource[K, V]

func (h fsHeap[K, V]) Len() int           { return len(h) }
func (h fsHeap[K, V]) Less(i, j int) bool { return h[i].used > h[j].used }
func (h fsHeap[K, V]) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *fsHeap[K, V]) Push(x any) {
	s := x.(*fsSource[K, V])
	s.index = len(*h)
	*h = append(*h, s)
}

func (h *fsHeap[K, V]) Pop() any {
	old := *h
	s := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return s
}
