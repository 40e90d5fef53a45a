package overlay

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// testRand returns a deterministic random source for a test.
func testRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9E3779B97F4A7C15)) }

func randKey(r *rand.Rand) Key {
	var k Key
	for i := range k {
		k[i] = byte(r.Uint32())
	}
	return k
}

// keyWithCPL returns a random key sharing exactly cpl leading bits with self
// (self itself for cpl 256).
func keyWithCPL(r *rand.Rand, self Key, cpl int) Key {
	if cpl == 256 {
		return self
	}
	k := randKey(r)
	for i := range cpl {
		setBit(&k, i, bit(self, i))
	}
	setBit(&k, cpl, 1-bit(self, cpl))
	return k
}

func bit(k Key, i int) int { return int(k[i/8]>>(7-i%8)) & 1 }

func setBit(k *Key, i, v int) {
	m := byte(0x80) >> (i % 8)
	if v == 0 {
		k[i/8] &^= m
	} else {
		k[i/8] |= m
	}
}

// dist is the XOR distance as a number, the reference for cmpDistance.
func dist(a, b Key) *big.Int {
	var x [32]byte
	for i := range x {
		x[i] = a[i] ^ b[i]
	}
	return new(big.Int).SetBytes(x[:])
}

func direct(port uint16) path {
	return path{addr: netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), port)}
}

// checkTable checks the table's internal consistency.
func checkTable(t *testing.T, tab *table) {
	t.Helper()
	n := 0
	for b, bucket := range tab.buckets {
		require.LessOrEqual(t, len(bucket), tab.k, "bucket %d", b)
		for _, c := range bucket {
			require.Equal(t, b, tab.bucketOf(c.id), "contact %v in bucket %d", c.id, b)
			require.Same(t, c, tab.get(c.id))
			n++
		}
		require.LessOrEqual(t, len(tab.repl[b]), tab.k, "replacements of bucket %d", b)
		for _, r := range tab.repl[b] {
			require.Equal(t, b, tab.bucketOf(r.id))
			require.Nil(t, tab.get(r.id), "replacement %v is in the table", r.id)
		}
	}
	require.Equal(t, n, tab.len())
	for c := range tab.contacts() {
		if c.p.relayed() {
			via := tab.get(c.p.relay())
			require.NotNil(t, via, "contact %v relayed through %v, which is not in the table", c.id, c.p.relay())
			require.False(t, via.p.relayed(), "contact %v relayed through a relayed contact", c.id)
		}
	}
}

func ids(cs []*contact) []ID {
	out := make([]ID, len(cs))
	for i, c := range cs {
		out[i] = c.id
	}
	return out
}

func TestCmpDistance(t *testing.T) {
	var zero Key
	one, two := Key{31: 1}, Key{31: 2}
	tests := []struct {
		name      string
		a, b, tgt Key
		want      int
	}{
		{"equal", one, one, zero, 0},
		{"equal to target", zero, zero, zero, 0},
		{"a is target", zero, one, zero, -1},
		{"b is target", one, zero, zero, 1},
		{"1 closer than 2 to 0", one, two, zero, -1},
		{"2 closer than 1 to 3", Key{31: 1}, Key{31: 2}, Key{31: 2}, 1},
		{"high bit dominates", Key{0: 0x80}, Key{31: 0xFF}, zero, 1},
		{"xor, not numeric difference", Key{31: 0b0111}, Key{31: 0b1000}, Key{31: 0b1000}, 1},
		{"xor, not numeric difference 2", Key{31: 0b0111}, Key{31: 0b1100}, Key{31: 0b0100}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, cmpDistance(tt.a, tt.b, tt.tgt))
			require.Equal(t, -tt.want, cmpDistance(tt.b, tt.a, tt.tgt))
		})
	}
	t.Run("random against big.Int", func(t *testing.T) {
		r := testRand(1)
		for range 2000 {
			a, b, tgt := randKey(r), randKey(r), randKey(r)
			if r.IntN(4) == 0 { // share a long prefix, so the difference is deep
				b = keyWithCPL(r, a, r.IntN(257))
			}
			require.Equal(t, dist(a, tgt).Cmp(dist(b, tgt)), cmpDistance(a, b, tgt))
			require.Equal(t, 0, cmpDistance(a, a, tgt))
		}
	})
}

func TestCommonPrefixLen(t *testing.T) {
	r := testRand(2)
	t.Run("equal", func(t *testing.T) {
		k := randKey(r)
		require.Equal(t, 256, commonPrefixLen(k, k))
		require.Equal(t, 256, commonPrefixLen(Key{}, Key{}))
	})
	for i := range 256 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			var a Key
			b := a
			setBit(&b, i, 1)
			require.Equal(t, i, commonPrefixLen(a, b))
			require.Equal(t, i, commonPrefixLen(b, a))
			// Bits after the first difference do not matter.
			c := randKey(r)
			d := keyWithCPL(r, c, i)
			require.Equal(t, i, commonPrefixLen(c, d))
			require.Equal(t, i, commonPrefixLen(d, c))
		})
	}
}

func TestRandomKeyInBucket(t *testing.T) {
	r := testRand(3)
	selves := []Key{{}, func() Key {
		var k Key
		for i := range k {
			k[i] = 0xFF
		}
		return k
	}()}
	for range 40 {
		selves = append(selves, randKey(r))
	}
	for _, self := range selves {
		for cpl := range 256 {
			k := randomKeyInBucket(self, cpl)
			require.Equal(t, cpl, commonPrefixLen(self, k), "self %x cpl %d key %x", self, cpl, k)
			// The key lands in bucket cpl of self's table.
			require.Equal(t, cpl, newTable(ID(self), 20, 0, 0).bucketOf(ID(k)))
		}
	}
	t.Run("random below the prefix", func(t *testing.T) {
		self := randKey(r)
		for _, cpl := range []int{0, 7, 8, 100, 247} {
			seen := map[Key]bool{}
			for range 16 {
				seen[randomKeyInBucket(self, cpl)] = true
			}
			require.Greater(t, len(seen), 1, "cpl %d: always the same key", cpl)
		}
	})
}

// newTestTable returns a table of capacity k for a random self.
func newTestTable(r *rand.Rand, k int) *table { return newTable(ID(randKey(r)), k, 0, 0) }

func (t *table) newContact(r *rand.Rand, cpl int, p path) *contact {
	return &contact{id: ID(keyWithCPL(r, t.self, cpl)), p: p}
}

func TestTableAddRemove(t *testing.T) {
	r := testRand(4)
	tab := newTestTable(r, 3)
	require.Equal(t, 0, tab.len())
	require.Equal(t, -1, tab.deepestNonEmpty())
	require.Nil(t, tab.get(ID{}))
	require.Nil(t, tab.remove(ID{1}), "removing an unknown ID")

	var added []*contact
	for i, cpl := range []int{0, 0, 5, 255} {
		c := tab.newContact(r, cpl, direct(uint16(1000+i)))
		require.True(t, tab.hasRoom(c.id, c.p))
		require.Equal(t, admitted, tab.add(c))
		require.Same(t, c, tab.get(c.id))
		require.Equal(t, cpl, tab.bucketOf(c.id))
		added = append(added, c)
	}
	checkTable(t, tab)
	require.Equal(t, 4, tab.len())
	require.Equal(t, 255, tab.deepestNonEmpty())
	require.ElementsMatch(t, added, tab.all())

	removed := tab.remove(added[3].id)
	require.Equal(t, []*contact{added[3]}, removed)
	require.Nil(t, tab.get(added[3].id))
	require.Equal(t, 5, tab.deepestNonEmpty())
	require.Nil(t, tab.remove(added[3].id), "removing twice")
	removed = tab.remove(added[0].id)
	require.Equal(t, []*contact{added[0]}, removed)
	require.Equal(t, []*contact{added[1]}, tab.buckets[0])
	checkTable(t, tab)
	require.Equal(t, 2, tab.len())
}

func TestTableBucketFull(t *testing.T) {
	r := testRand(5)
	const k = 4
	tab := newTestTable(r, k)
	var in []*contact
	for i := range k {
		c := tab.newContact(r, 3, direct(uint16(i+1)))
		require.Equal(t, admitted, tab.add(c))
		in = append(in, c)
	}
	extra := tab.newContact(r, 3, direct(99))
	require.False(t, tab.hasRoom(extra.id, extra.p))
	require.Equal(t, bucketFull, tab.add(extra))
	require.Nil(t, tab.get(extra.id))
	require.Len(t, tab.buckets[3], k)
	for _, c := range in {
		require.True(t, tab.hasRoom(c.id, c.p), "a contact already in the table has room")
	}
	// Other buckets are unaffected.
	other := tab.newContact(r, 4, direct(100))
	require.True(t, tab.hasRoom(other.id, other.p))
	require.Equal(t, admitted, tab.add(other))
	checkTable(t, tab)

	// Removing one makes room again.
	tab.remove(in[1].id)
	require.True(t, tab.hasRoom(extra.id, extra.p))
	require.Equal(t, admitted, tab.add(extra))
	require.Len(t, tab.buckets[3], k)
	checkTable(t, tab)
}

// repls returns the replacements the candidates cs make.
func repls(cs ...candidate) []replacement {
	var rs []replacement
	for _, c := range cs {
		r, ok := replacementOf(c)
		if !ok {
			panic("a candidate with no address or a zoned one")
		}
		rs = append(rs, r)
	}
	return rs
}

func TestTableReplacements(t *testing.T) {
	r := testRand(6)
	const k = 3
	tab := newTestTable(r, k)
	_, ok := tab.popReplacement(ID(keyWithCPL(r, tab.self, 2)))
	require.False(t, ok, "no replacement in an empty bucket")

	cand := func(port uint16) candidate {
		return candidate{id: ID(keyWithCPL(r, tab.self, 2)), addr: direct(port).addr}
	}
	c1, c2, c3, c4 := cand(1), cand(2), cand(3), cand(4)
	tab.addReplacement(c1)
	tab.addReplacement(c2)
	tab.addReplacement(c3)
	require.Equal(t, repls(c1, c2, c3), tab.repl[2])

	// Re-adding moves a candidate to the newest place, with its new data.
	c1b := c1
	c1b.public = true
	tab.addReplacement(c1b)
	require.Equal(t, repls(c2, c3, c1b), tab.repl[2])

	// Past k the oldest is dropped.
	tab.addReplacement(c4)
	require.Equal(t, repls(c3, c1b, c4), tab.repl[2])
	checkTable(t, tab)

	// A contact in the table is not a replacement, and adding one removes it
	// from the replacements.
	in := &contact{id: c3.id, p: path{addr: c3.addr}}
	require.Equal(t, admitted, tab.add(in))
	require.Equal(t, repls(c1b, c4), tab.repl[2])
	tab.addReplacement(c3)
	require.Equal(t, repls(c1b, c4), tab.repl[2])
	checkTable(t, tab)

	// Replacements of other buckets are separate.
	o := candidate{id: ID(keyWithCPL(r, tab.self, 200)), addr: direct(5).addr}
	tab.addReplacement(o)
	require.Equal(t, repls(o), tab.repl[200])

	// popReplacement takes the newest of the bucket of the given ID.
	got, ok := tab.popReplacement(in.id)
	require.True(t, ok)
	require.Equal(t, c4, got)
	got, ok = tab.popReplacement(ID(keyWithCPL(r, tab.self, 2)))
	require.True(t, ok)
	require.Equal(t, c1b, got)
	_, ok = tab.popReplacement(in.id)
	require.False(t, ok)
	got, ok = tab.popReplacement(o.id)
	require.True(t, ok)
	require.Equal(t, o, got)
	checkTable(t, tab)
}

func TestTableRemoveCascades(t *testing.T) {
	r := testRand(7)
	tab := newTestTable(r, 20)
	relay1 := tab.newContact(r, 1, direct(1))
	relay2 := tab.newContact(r, 2, direct(2))
	a := tab.newContact(r, 1, viaPath(relay1.id))
	b := tab.newContact(r, 9, viaPath(relay1.id))
	c := tab.newContact(r, 9, viaPath(relay2.id))
	d := tab.newContact(r, 0, direct(3))
	for _, x := range []*contact{relay1, relay2, a, b, c, d} {
		require.Equal(t, admitted, tab.add(x))
	}
	checkTable(t, tab)

	// Removing a relayed contact removes only it.
	require.Equal(t, []*contact{c}, tab.remove(c.id))
	require.Same(t, relay2, tab.get(relay2.id))
	checkTable(t, tab)

	// Removing a relay removes the contacts relayed through it.
	removed := tab.remove(relay1.id)
	require.Len(t, removed, 3)
	require.Same(t, relay1, removed[0], "the removed contact comes first")
	require.ElementsMatch(t, []*contact{relay1, a, b}, removed)
	for _, x := range removed {
		require.Nil(t, tab.get(x.id))
	}
	require.ElementsMatch(t, []*contact{relay2, d}, tab.all())
	checkTable(t, tab)

	// A relay with nothing relayed through it.
	require.Equal(t, []*contact{relay2}, tab.remove(relay2.id))
	require.Equal(t, []*contact{d}, tab.all())
	checkTable(t, tab)
}

func TestTableRemoveCascadesMany(t *testing.T) {
	r := testRand(8)
	for round := range 50 {
		tab := newTestTable(r, 20)
		var relays []*contact
		for i := range 1 + r.IntN(4) {
			c := tab.newContact(r, r.IntN(20), direct(uint16(i+1)))
			if tab.add(c) == admitted {
				relays = append(relays, c)
			}
		}
		through := map[ID][]ID{}
		for range r.IntN(60) {
			via := relays[r.IntN(len(relays))]
			c := tab.newContact(r, r.IntN(20), viaPath(via.id))
			if tab.add(c) == admitted {
				through[via.id] = append(through[via.id], c.id)
			}
		}
		checkTable(t, tab)
		victim := relays[r.IntN(len(relays))]
		before := tab.len()
		removed := tab.remove(victim.id)
		require.ElementsMatch(t, append([]ID{victim.id}, through[victim.id]...), ids(removed), "round %d", round)
		require.Equal(t, before-len(removed), tab.len())
		checkTable(t, tab)
	}
}

func TestTableClosest(t *testing.T) {
	r := testRand(9)
	for round := range 30 {
		tab := newTestTable(r, 20)
		for i := range r.IntN(80) {
			tab.add(tab.newContact(r, r.IntN(12), direct(uint16(i))))
		}
		target := randKey(r)
		if round%3 == 0 {
			target = keyWithCPL(r, tab.self, r.IntN(12))
		}
		all := tab.all()
		slices.SortFunc(all, func(a, b *contact) int { return dist(a.id.Key(), target).Cmp(dist(b.id.Key(), target)) })
		for _, n := range []int{0, 1, 3, 20, 1000} {
			got := tab.closest(target, n, nil)
			require.Equal(t, ids(all[:min(n, len(all))]), ids(got), "round %d n %d", round, n)
		}
		skip := func(c *contact) bool { return c.id[0]&1 == 0 }
		var want []*contact
		for _, c := range all {
			if !skip(c) {
				want = append(want, c)
			}
		}
		got := tab.closest(target, 5, skip)
		require.Equal(t, ids(want[:min(5, len(want))]), ids(got), "round %d with skip", round)
	}
}

// TestTableClosestBucketOrder checks closest, which sorts one bucket at a
// time in bucketsByDistance's order, against sorting every contact, then
// Diverse: for targets in every bucket and deeper than the deepest, self's
// key among them, with and without a subnet limit and a skip.
func TestTableClosestBucketOrder(t *testing.T) {
	r := testRand(17)
	for round := range 300 {
		perBucket := 0
		if round%2 == 1 {
			perBucket = 1 + r.IntN(3)
		}
		self := ID(randKey(r))
		tab := newTable(self, 20, perBucket, 0)
		depth := 1 + r.IntN(20)
		for i := range 20 + r.IntN(300) {
			p := path{addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(r.IntN(6)), 0, 1}), uint16(i))}
			tab.add(tab.newContact(r, r.IntN(depth), p))
		}
		var target Key
		switch round % 4 {
		case 0:
			target = randKey(r)
		case 1:
			target = keyWithCPL(r, tab.self, r.IntN(depth+3))
		case 2:
			target = tab.self
		case 3:
			target = tab.all()[r.IntN(tab.len())].id.Key()
		}
		var skip func(*contact) bool
		if round%5 == 0 {
			skip = func(c *contact) bool { return c.id[1]&1 == 0 }
		}
		var all []*contact
		for _, c := range tab.all() {
			if skip == nil || !skip(c) {
				all = append(all, c)
			}
		}
		slices.SortFunc(all, func(a, b *contact) int { return dist(a.id.Key(), target).Cmp(dist(b.id.Key(), target)) })
		for _, n := range []int{1, 7, 20, 1000} {
			want := all[:min(n, len(all))]
			if perBucket > 0 {
				want = Diverse(all, func(c *contact) netip.Addr { return c.p.addr.Addr() }, perBucket, n)
			}
			require.Equal(t, ids(want), ids(tab.closest(target, n, skip)), "round %d n %d", round, n)
		}
	}
}

func TestTableNextHop(t *testing.T) {
	r := testRand(10)
	t.Run("empty table", func(t *testing.T) {
		tab := newTestTable(r, 20)
		require.Nil(t, tab.nextHop(randKey(r), nil))
	})
	t.Run("target is self", func(t *testing.T) {
		tab := newTestTable(r, 20)
		for i := range 30 {
			tab.add(tab.newContact(r, r.IntN(256), direct(uint16(i))))
		}
		require.Nil(t, tab.nextHop(tab.self, nil), "no contact is closer to self than self")
	})
	t.Run("target is a contact", func(t *testing.T) {
		tab := newTestTable(r, 20)
		var cs []*contact
		for i := range 10 {
			c := tab.newContact(r, i, direct(uint16(i)))
			tab.add(c)
			cs = append(cs, c)
		}
		for _, c := range cs {
			require.Same(t, c, tab.nextHop(c.id.Key(), nil))
		}
	})
	t.Run("only farther contacts", func(t *testing.T) {
		tab := newTestTable(r, 20)
		// The target differs from self at bit 10. Contacts differing from
		// self earlier are farther from it than self.
		target := keyWithCPL(r, tab.self, 10)
		for cpl := range 10 {
			tab.add(tab.newContact(r, cpl, direct(uint16(cpl))))
		}
		require.Nil(t, tab.nextHop(target, nil))
		// A contact on the target's side of bit 10 is closer.
		closer := &contact{id: ID(keyWithCPL(r, target, 11)), p: direct(50)}
		require.Equal(t, 10, tab.bucketOf(closer.id))
		require.Equal(t, admitted, tab.add(closer))
		require.Same(t, closer, tab.nextHop(target, nil))
		require.Nil(t, tab.nextHop(target, []ID{closer.id}))
	})
	t.Run("strictly closer by the last bit", func(t *testing.T) {
		tab := newTestTable(r, 20)
		// c differs from self in the last bit only: it is closer to a target
		// than self exactly when its last bit matches the target's.
		c := &contact{id: ID(tab.self), p: direct(1)}
		c.id[31] ^= 1
		require.Equal(t, admitted, tab.add(c))
		target := keyWithCPL(r, tab.self, 100)
		setBit(&target, 255, bit(Key(c.id), 255))
		require.Same(t, c, tab.nextHop(target, nil))
		setBit(&target, 255, bit(tab.self, 255))
		require.Nil(t, tab.nextHop(target, nil))
	})
	t.Run("suspect contacts are skipped", func(t *testing.T) {
		tab := newTestTable(r, 20)
		target := randKey(r)
		near := &contact{id: ID(keyWithCPL(r, target, 200)), p: direct(1)}
		far := &contact{id: ID(keyWithCPL(r, target, 100)), p: direct(2)}
		require.Equal(t, admitted, tab.add(near))
		require.Equal(t, admitted, tab.add(far))
		if tab.nextHop(target, nil) == nil {
			t.Skip("self is closer than both") // about 1 in 2^100
		}
		require.Same(t, near, tab.nextHop(target, nil))
		near.suspect = stampOf(time.Now())
		require.Same(t, far, tab.nextHop(target, nil))
		far.suspect = stampOf(time.Now())
		require.Nil(t, tab.nextHop(target, nil))
		near.suspect = 0
		require.Same(t, near, tab.nextHop(target, nil))
		// closest, used by lookups and Find answers, still lists suspects.
		require.Equal(t, []ID{near.id, far.id}, ids(tab.closest(target, 5, nil)))
	})
	t.Run("random against reference", func(t *testing.T) {
		for round := range 200 {
			tab := newTestTable(r, 20)
			for i := range r.IntN(40) {
				tab.add(tab.newContact(r, r.IntN(16), direct(uint16(i))))
			}
			target := keyWithCPL(r, tab.self, r.IntN(16))
			var exclude []ID
			for _, c := range tab.all() {
				switch r.IntN(5) {
				case 0:
					exclude = append(exclude, c.id)
				case 1:
					c.suspect = stampOf(time.Now())
				}
			}
			var want *contact
			for _, c := range tab.all() {
				if !c.suspect.IsZero() || slices.Contains(exclude, c.id) || dist(c.id.Key(), target).Cmp(dist(tab.self, target)) >= 0 {
					continue
				}
				if want == nil || dist(c.id.Key(), target).Cmp(dist(want.id.Key(), target)) < 0 {
					want = c
				}
			}
			got := tab.nextHop(target, exclude)
			if want == nil {
				require.Nil(t, got, "round %d", round)
			} else {
				require.NotNil(t, got, "round %d", round)
				require.Equal(t, want.id, got.id, "round %d", round)
			}
		}
	})
}

func TestContactRTO(t *testing.T) {
	for _, tt := range []struct{ srtt, want int64 }{
		{0, 150}, {10, 150}, {40, 170}, {500, 1550}, {1000, 2000}, {10000, 2000},
	} {
		c := &contact{srtt: msDuration(tt.srtt)}
		require.Equal(t, msDuration(tt.want), c.rto(), "srtt %dms", tt.srtt)
	}
}

func msDuration(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }

// TestStampsInASyncTestBubble: stamps and seconds follow a bubble's clock,
// which starts at 2000-01-01 with no monotonic reading (the clock of a
// simulated network's nodes, internal/sim): a moment an hour later is an
// hour later, not clamped to the epoch.
func TestStampsInASyncTestBubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s0, sec0 := stampOf(time.Now()), secondsOf(time.Now())
		time.Sleep(time.Hour)
		now := time.Now()
		s1, sec1 := stampOf(now), secondsOf(now)
		require.Equal(t, time.Hour, s0.since(now), "a stamp an hour old")
		require.Equal(t, time.Hour, time.Duration(s1-s0))
		require.Equal(t, seconds(3600), sec1-sec0)
		require.True(t, s1.After(s0))
	})
}

// TestReplacementKeepsAddress: a replacement gives back the candidate it was
// made of, for IPv4, IPv6 and IPv4-mapped IPv6 addresses; a candidate at a
// zoned address, or none, is not made one.
func TestReplacementKeepsAddress(t *testing.T) {
	for _, s := range []string{"192.0.2.1:4000", "[2001:db8::1]:4000", "[::ffff:192.0.2.1]:4000", "[::]:0"} {
		c := candidate{id: ID{1}, addr: netip.MustParseAddrPort(s), public: true}
		r, ok := replacementOf(c)
		require.True(t, ok, s)
		require.Equal(t, c, r.candidate(), s)
	}
	_, ok := replacementOf(candidate{id: ID{1}, addr: netip.MustParseAddrPort("[fe80::1%eth0]:4000")})
	require.False(t, ok, "a zoned address")
	_, ok = replacementOf(candidate{id: ID{1}})
	require.False(t, ok, "no address")
	tab := newTable(ID{9}, 20, 0, 0)
	tab.addReplacement(candidate{id: ID{1}, addr: netip.MustParseAddrPort("[fe80::1%eth0]:4000")})
	require.Empty(t, tab.replOf(tab.bucketOf(ID{1})))
}
