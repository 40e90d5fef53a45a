package overlay

import (
	"iter"
	"net/netip"
	"slices"
	"time"
	"unique"
)

// path is how a contact is reached: directly at addr, or through the relay
// contact via (then addr is unused). The relay's ID is interned (8 bytes,
// not 32: a node keeps a path in each contact, cached path and pending
// ping, and nearly all are direct); paths compare with == as before.
type path struct {
	addr netip.AddrPort
	via  unique.Handle[ID] // zero: direct
}

// viaPath returns the path through the relay id; through the zero ID, the
// zero path.
func viaPath(id ID) path {
	if id == (ID{}) {
		return path{}
	}
	return path{via: unique.Make(id)}
}

func (p path) relayed() bool { return p.via != unique.Handle[ID]{} }

// relay returns the ID of p's relay; zero if p is direct.
func (p path) relay() ID {
	if !p.relayed() {
		return ID{}
	}
	return p.via.Value()
}

// contact is a node in the routing table: it has proved it holds the key of
// its ID, and a packet from it arrived on p recently. A node holds a
// hundred or more, so its moments are stamps (8 bytes, not a time.Time's
// 24), the one that needs no precision finer than a second is in seconds
// (4 bytes), and its path's relay is interned: 117 bytes a contact, in
// 128-byte allocations (141 and 144 with the relay's 32-byte ID, 232 with
// time.Time).
type contact struct {
	id       ID
	p        path
	srtt     time.Duration
	lastSeen stamp
	lastPing stamp
	roundAt  stamp // when the latest keepalive round of pings began
	suspect  stamp // when a hop to it went unacknowledged; zero if it answers

	// rechecked is when a ping of the contact's last made this node ask it
	// again whether it is public (recheckPublicLocked), in seconds.
	rechecked seconds
	public    bool // the contact reports itself directly reachable
}

// seconds is a moment in whole seconds since the stamps' epoch, plus one
// (136 years). Zero: never.
type seconds uint32

// secondsOf returns t in seconds; a moment before the epoch is its first
// second.
func secondsOf(t time.Time) seconds { return seconds(max(t.Sub(epoch), 0)/time.Second) + 1 }

// stamp is a moment as a contact records it: the time since the process's
// epoch on the monotonic clock, in nanoseconds (292 years). Zero: never.
type stamp int64

// epoch is the origin of stamps: epochLead before the process started,
// on its monotonic clock. The lead keeps the stamps of a clock without a
// monotonic reading that starts earlier than the process positive and in
// order: testing/synctest's bubbles start at 2000-01-01, and a simulated
// network's nodes run in one (internal/sim).
var epoch = time.Now().Add(-epochLead)

// epochLead is 50 years: 1.6e18 ns of a stamp's 9.2e18, 1.6e9 s of a
// seconds' 4.3e9.
const epochLead = 50 * 365 * 24 * time.Hour

// stampOf returns t as a stamp; a moment at or before the epoch is its
// first nanosecond, so that only the zero stamp means never.
func stampOf(t time.Time) stamp { return stamp(max(t.Sub(epoch), 1)) }

// IsZero reports whether s is never.
func (s stamp) IsZero() bool { return s == 0 }

// After reports whether s is later than u.
func (s stamp) After(u stamp) bool { return s > u }

// since returns the time from s to now.
func (s stamp) since(now time.Time) time.Duration { return now.Sub(s.time()) }

// time returns s as a time.Time (the zero Time for the zero stamp).
func (s stamp) time() time.Time {
	if s == 0 {
		return time.Time{}
	}
	return epoch.Add(time.Duration(s))
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

// replacement is a candidate waiting in a replacement list: one that proved
// its address while its bucket was full, so it has no introducer. It holds
// no pointer (its address as 16 bytes, port and family): 52 bytes, not a
// candidate's 104, and a full list (k = 20) is 1040 bytes in the
// allocator's 1152-byte class. A list with pointers of 1281 to 1536 bytes
// (with the 8-byte header the allocator adds) would share the 1408- and
// 1536-byte classes with the packets and quic-go's packet buffers that
// come and go by the thousand, and keep their spans in use (6 KiB of free
// slots a node at N = 300, in a heap dump).
type replacement struct {
	id     ID
	ip     [16]byte
	port   uint16
	is4    bool
	public bool
}

// replacementOf returns c as a replacement; ok is false if c has no
// address, or one with a zone (an IPv6 link-local address), which a
// replacement cannot hold: such a candidate waits for no place in the
// table, and lookups find it again.
func replacementOf(c candidate) (r replacement, ok bool) {
	a := c.addr.Addr()
	if !a.IsValid() || a.Zone() != "" {
		return replacement{}, false
	}
	return replacement{id: c.id, ip: a.As16(), port: c.addr.Port(), is4: a.Is4(), public: c.public}, true
}

// addr returns r's address.
func (r replacement) addr() netip.AddrPort {
	a := netip.AddrFrom16(r.ip)
	if r.is4 {
		a = a.Unmap()
	}
	return netip.AddrPortFrom(a, r.port)
}

func (r replacement) candidate() candidate {
	return candidate{id: r.id, addr: r.addr(), public: r.public}
}

// table is the Kademlia routing table: contacts in buckets by the length of
// the prefix they share with self, k per bucket, plus up to k replacement
// candidates per bucket. It is guarded by Overlay.mu.
//
// The table is diverse: a bucket holds at most perBucket contacts of one
// subnet (see Subnet), the table at most perTable, and a bucket's
// replacement list at most perBucket candidates of one subnet. A contact
// reached through a relay counts under its relay's subnet. A full bucket
// keeps its contacts (Kademlia's rule: the long-lived ones are kept over
// newcomers, who wait in the replacement list until a contact dies).
type table struct {
	self      Key
	k         int
	perBucket int // contacts of one subnet per bucket; <= 0: no limit
	perTable  int // contacts of one subnet in the table; <= 0: no limit
	// buckets holds the contacts by the length of the prefix they share
	// with self (0–256), repl the replacement candidates alike: both are
	// as long as the deepest bucket used (about log2 of the network's
	// size), not 257 (12 KiB a node). A contact is found by ID in its
	// bucket (at most k to compare), not in a map beside the buckets:
	// that map cost about 56 bytes a contact, in every node.
	buckets [][]*contact
	repl    [][]replacement
	n       int    // contacts in buckets
	gen     uint64 // counts the contacts added and removed
}

func newTable(self ID, k, perBucket, perTable int) *table {
	return &table{self: self.Key(), k: k, perBucket: perBucket, perTable: perTable}
}

// contacts returns every contact, by bucket. The table must not change
// while the sequence runs (all returns a copy to change it by).
func (t *table) contacts() iter.Seq[*contact] {
	return func(yield func(*contact) bool) {
		for _, b := range t.buckets {
			for _, c := range b {
				if !yield(c) {
					return
				}
			}
		}
	}
}

// refusal is why the table did not take a verified node.
type refusal int

const (
	admitted       refusal = iota
	bucketFull             // its bucket holds k contacts: it waits in the replacement list
	subnetInBucket         // its bucket holds perBucket contacts of its subnet
	subnetInTable          // the table holds perTable contacts of its subnet
)

// subnetOf returns the subnet a path counts toward: its address's, or for a
// relayed path the relay contact's (zero if the relay is not a contact).
func (t *table) subnetOf(p path) netip.Prefix {
	if p.relayed() {
		if r := t.get(p.relay()); r != nil && !r.p.relayed() {
			return Subnet(r.p.addr.Addr())
		}
		return netip.Prefix{}
	}
	return Subnet(p.addr.Addr())
}

// admits reports whether a node id on path p (not in the table, or in it
// and changing its path) fits the table's limits.
func (t *table) admits(id ID, p path) refusal {
	b := t.bucketOf(id)
	if t.get(id) == nil && len(t.bucket(b)) >= t.k {
		return bucketFull
	}
	s := t.subnetOf(p)
	if !s.IsValid() {
		return admitted
	}
	if t.perBucket > 0 {
		n := 0
		for _, c := range t.bucket(b) {
			if c.id != id && t.subnetOf(c.p) == s {
				n++
			}
		}
		if n >= t.perBucket {
			return subnetInBucket
		}
	}
	if t.perTable > 0 {
		n := 0
		for c := range t.contacts() {
			if c.id != id && t.subnetOf(c.p) == s {
				n++
			}
		}
		if n >= t.perTable {
			return subnetInTable
		}
	}
	return admitted
}

func (t *table) bucketOf(id ID) int { return commonPrefixLen(t.self, id.Key()) }

// grow makes buckets and repl long enough to hold bucket b.
func (t *table) grow(b int) {
	for len(t.buckets) <= b {
		t.buckets = append(t.buckets, nil)
		t.repl = append(t.repl, nil)
	}
}

// bucket returns the contacts of bucket b.
func (t *table) bucket(b int) []*contact {
	if b < len(t.buckets) {
		return t.buckets[b]
	}
	return nil
}

// replOf returns the replacement candidates of bucket b.
func (t *table) replOf(b int) []replacement {
	if b < len(t.repl) {
		return t.repl[b]
	}
	return nil
}

// get returns the contact id, or nil.
func (t *table) get(id ID) *contact {
	for _, c := range t.bucket(t.bucketOf(id)) {
		if c.id == id {
			return c
		}
	}
	return nil
}

func (t *table) len() int { return t.n }

// hasRoom reports whether a verified id on path p would be added to the
// table.
func (t *table) hasRoom(id ID, p path) bool {
	if t.get(id) != nil {
		return true
	}
	return t.admits(id, p) == admitted
}

// add inserts c if its bucket has room and its subnet is within the
// limits; otherwise it says why not.
func (t *table) add(c *contact) refusal {
	if r := t.admits(c.id, c.p); r != admitted {
		return r
	}
	b := t.bucketOf(c.id)
	t.grow(b)
	t.buckets[b] = appendUpTo(t.buckets[b], c, t.k)
	t.n++
	t.gen++
	t.repl[b] = slices.DeleteFunc(t.repl[b], func(x replacement) bool { return x.id == c.id })
	return admitted
}

// remove deletes id and every contact relayed through it; it returns the
// removed contacts.
func (t *table) remove(id ID) []*contact {
	c := t.get(id)
	if c == nil {
		return nil
	}
	b := t.bucketOf(id)
	t.buckets[b] = slices.DeleteFunc(t.buckets[b], func(x *contact) bool { return x == c })
	t.n--
	t.gen++
	removed := []*contact{c}
	if !c.p.relayed() {
		var via []ID
		for x := range t.contacts() {
			if x.p.relay() == id {
				via = append(via, x.id)
			}
		}
		for _, x := range via {
			removed = append(removed, t.remove(x)...)
		}
	}
	return removed
}

// addReplacement remembers a candidate for a full bucket (not its
// introducer). The list holds k
// candidates, at most perBucket of one subnet: a newcomer from a subnet
// that has its share takes the place of that subnet's oldest candidate, so
// one network cannot push the others' candidates out.
func (t *table) addReplacement(c candidate) {
	b := t.bucketOf(c.id)
	rc, ok := replacementOf(c)
	if !ok || t.get(c.id) != nil {
		return
	}
	t.grow(b)
	r := slices.DeleteFunc(t.repl[b], func(x replacement) bool { return x.id == c.id })
	s := Subnet(c.addr.Addr())
	oldest, same := -1, 0
	for i, x := range r {
		if s.IsValid() && Subnet(x.addr().Addr()) == s {
			if oldest < 0 {
				oldest = i
			}
			same++
		}
	}
	switch {
	case t.perBucket > 0 && same >= t.perBucket:
		r = slices.Delete(r, oldest, oldest+1)
	case len(r) >= t.k:
		r = slices.Delete(r, 0, 1) // in place: the list keeps its array
	}
	t.repl[b] = appendUpTo(r, rc, t.k)
}

// appendUpTo appends v to s, which holds fewer than k elements (a bucket, a
// replacement list). A new array is never longer than k: append's doubling
// would leave a full list of 20 in an array of 32.
func appendUpTo[T any](s []T, v T, k int) []T {
	if len(s) == cap(s) && len(s) < k {
		grown := make([]T, len(s), min(max(2*cap(s), 4), k))
		copy(grown, s)
		s = grown
	}
	return append(s, v)
}

// popReplacement takes the newest replacement candidate of id's bucket.
func (t *table) popReplacement(id ID) (candidate, bool) {
	b := t.bucketOf(id)
	r := t.replOf(b)
	if len(r) == 0 {
		return candidate{}, false
	}
	c := r[len(r)-1]
	t.repl[b] = r[:len(r)-1]
	return c.candidate(), true
}

// closest returns up to n contacts closest to target, nearest first, leaving
// out those for which skip returns true. The set is diverse: it holds at
// most perBucket contacts of one subnet (a relayed contact counts under its
// relay's), so the nearest neighbours this node names in lookup answers,
// and the nodes it picks by distance, come from several networks even where
// one network placed many nodes next to target.
func (t *table) closest(target Key, n int, skip func(*contact) bool) []*contact {
	if n <= 0 {
		return nil
	}
	out := make([]*contact, 0, min(n, t.n))
	q := subnetQuota{per: t.perBucket}
	var sorted []*contact // one bucket's contacts, nearest first; reused
	for b := range t.bucketsByDistance(target) {
		sorted = sorted[:0]
		for _, c := range t.buckets[b] {
			if skip == nil || !skip(c) {
				sorted = append(sorted, c)
			}
		}
		slices.SortFunc(sorted, func(a, b *contact) int { return cmpDistance(a.id.Key(), b.id.Key(), target) })
		for _, c := range sorted {
			if t.perBucket > 0 && !q.take(t.subnetOf(c.p)) {
				continue
			}
			if out = append(out, c); len(out) == n {
				return out
			}
		}
	}
	return out
}

// bucketsByDistance yields the indexes of the table's buckets in the order
// of their contacts' distance to target, nearest first: every contact of a
// bucket yielded is nearer to target than every contact of the buckets
// yielded after it, so closest sorts one bucket at a time (at most k
// contacts) and stops once it has its n, rather than sorting the table for
// every Find it answers.
//
// With d the number of leading bits target shares with self, and x =
// self XOR target: bucket d's contacts share more than d bits with target
// and come first; a contact of bucket j > d shares exactly d, then its
// distance's bits d+1..j-1 are x's and bit j is x's flipped, so the buckets
// j > d whose bit x_j is 1 come next (ascending j), then those whose x_j is
// 0 (descending j); last the buckets i < d, whose contacts share exactly i
// bits with target (descending i).
func (t *table) bucketsByDistance(target Key) iter.Seq[int] {
	return func(yield func(int) bool) {
		d := commonPrefixLen(t.self, target)
		nb := len(t.buckets)
		if d < nb && !yield(d) {
			return
		}
		bit := func(j int) bool { // x_j; bucket 256 (self's ID) sorts as if 0
			return j < 256 && (t.self[j/8]^target[j/8])&(0x80>>(j%8)) != 0
		}
		for j := d + 1; j < nb; j++ {
			if bit(j) && !yield(j) {
				return
			}
		}
		for j := nb - 1; j > d; j-- {
			if !bit(j) && !yield(j) {
				return
			}
		}
		for i := min(d, nb) - 1; i >= 0; i-- {
			if !yield(i) {
				return
			}
		}
	}
}

// nextHop returns the contact closest to target that is strictly closer to it
// than self, leaving out suspect contacts and the IDs in exclude; nil if there
// is none.
func (t *table) nextHop(target Key, exclude []ID) *contact {
	var best *contact
	for c := range t.contacts() {
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
	out := make([]*contact, 0, t.n)
	for c := range t.contacts() {
		out = append(out, c)
	}
	return out
}

// deepestNonEmpty returns the largest bucket index holding a contact, or -1.
func (t *table) deepestNonEmpty() int {
	for i := len(t.buckets) - 1; i >= 0; i-- {
		if len(t.buckets[i]) > 0 {
			return i
		}
	}
	return -1
}
