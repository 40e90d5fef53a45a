package overlay

import (
	"net/netip"
	"slices"
	"time"
)

// path is how a contact is reached: directly at addr, or through the relay
// contact via (then addr is unused).
type path struct {
	addr netip.AddrPort
	via  ID
}

func (p path) relayed() bool { return p.via != (ID{}) }

// contact is a node in the routing table: it has proved it holds the key of
// its ID, and a packet from it arrived on p recently.
type contact struct {
	id       ID
	p        path
	public   bool // the contact reports itself directly reachable
	lastSeen time.Time
	lastPing time.Time
	srtt     time.Duration
	suspect  time.Time // when a hop to it went unacknowledged; zero if it answers
}

// rto is the retransmission timeout toward the contact.
func (c *contact) rto() time.Duration {
	r := 3*c.srtt + 50*time.Millisecond
	return min(max(r, 150*time.Millisecond), 2*time.Second)
}

// candidate is a node learned second-hand, not yet verified.
type candidate struct {
	id         ID
	addr       netip.AddrPort
	public     bool
	introducer ID // the contact that told us about it (zero: none)
}

// table is the Kademlia routing table: contacts in buckets by the length of
// the prefix they share with self, k per bucket, plus up to k replacement
// candidates per bucket. It is guarded by Overlay.mu.
type table struct {
	self    Key
	k       int
	buckets [257][]*contact
	repl    [257][]candidate
	byID    map[ID]*contact
}

func newTable(self ID, k int) *table {
	return &table{self: self.Key(), k: k, byID: make(map[ID]*contact)}
}

func (t *table) bucketOf(id ID) int { return commonPrefixLen(t.self, id.Key()) }

func (t *table) get(id ID) *contact { return t.byID[id] }

func (t *table) len() int { return len(t.byID) }

// hasRoom reports whether a verified id would be added to the table.
func (t *table) hasRoom(id ID) bool {
	if _, ok := t.byID[id]; ok {
		return true
	}
	return len(t.buckets[t.bucketOf(id)]) < t.k
}

// add inserts c; it reports false when c's bucket is full.
func (t *table) add(c *contact) bool {
	b := t.bucketOf(c.id)
	if len(t.buckets[b]) >= t.k {
		return false
	}
	t.buckets[b] = append(t.buckets[b], c)
	t.byID[c.id] = c
	t.repl[b] = slices.DeleteFunc(t.repl[b], func(x candidate) bool { return x.id == c.id })
	return true
}

// remove deletes id and every contact relayed through it; it returns the
// removed contacts.
func (t *table) remove(id ID) []*contact {
	c := t.byID[id]
	if c == nil {
		return nil
	}
	b := t.bucketOf(id)
	t.buckets[b] = slices.DeleteFunc(t.buckets[b], func(x *contact) bool { return x == c })
	delete(t.byID, id)
	removed := []*contact{c}
	if !c.p.relayed() {
		for _, x := range t.byID {
			if x.p.via == id {
				removed = append(removed, t.remove(x.id)...)
			}
		}
	}
	return removed
}

// addReplacement remembers a candidate for a full bucket.
func (t *table) addReplacement(c candidate) {
	b := t.bucketOf(c.id)
	if _, ok := t.byID[c.id]; ok {
		return
	}
	r := slices.DeleteFunc(t.repl[b], func(x candidate) bool { return x.id == c.id })
	if len(r) >= t.k {
		r = r[1:]
	}
	t.repl[b] = append(r, c)
}

// popReplacement takes the newest replacement candidate of id's bucket.
func (t *table) popReplacement(id ID) (candidate, bool) {
	b := t.bucketOf(id)
	r := t.repl[b]
	if len(r) == 0 {
		return candidate{}, false
	}
	c := r[len(r)-1]
	t.repl[b] = r[:len(r)-1]
	return c, true
}

// closest returns up to n contacts closest to target, nearest first, leaving
// out those for which skip returns true.
func (t *table) closest(target Key, n int, skip func(*contact) bool) []*contact {
	out := make([]*contact, 0, len(t.byID))
	for _, c := range t.byID {
		if skip == nil || !skip(c) {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b *contact) int { return cmpDistance(a.id.Key(), b.id.Key(), target) })
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// nextHop returns the contact closest to target that is strictly closer to it
// than self, leaving out suspect contacts and the IDs in exclude; nil if there
// is none.
func (t *table) nextHop(target Key, exclude []ID) *contact {
	var best *contact
	for _, c := range t.byID {
		if !c.suspect.IsZero() || slices.Contains(exclude, c.id) {
			continue
		}
		if best == nil || cmpDistance(c.id.Key(), best.id.Key(), target) < 0 {
			best = c
		}
	}
	if best == nil || cmpDistance(best.id.Key(), t.self, target) >= 0 {
		return nil
	}
	return best
}

// all returns every contact.
func (t *table) all() []*contact {
	out := make([]*contact, 0, len(t.byID))
	for _, c := range t.byID {
		out = append(out, c)
	}
	return out
}

// deepestNonEmpty returns the largest bucket index holding a contact, or -1.
func (t *table) deepestNonEmpty() int {
	for i := 256; i >= 0; i-- {
		if len(t.buckets[i]) > 0 {
			return i
		}
	}
	return -1
}
