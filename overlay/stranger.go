package overlay

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/p2psock/p2psock/internal/wire"
)

// A stranger is a source that has not proved it owns its address: a node
// with no verified link to this one on the path its frame came over, at an
// address this node is not pinging itself. Its address may be forged, so
// what it sends must not make this node keep state or send more bytes than
// it received (QUIC's address validation, WireGuard's cookie reply):
//
//   - its challenge (a Ping asking for proof) carries a stateless cookie as
//     its nonce, a MAC of the stranger's ID and path under a key that
//     rotates, and nothing is remembered until the signed Pong comes back
//     on that path;
//   - a Ping from it is answered only if it was padded to the size of the
//     answer (wire.ProbeLen pays for the Pong and the challenge), a Find
//     only if padded to the size of the Nodes, otherwise with the challenge
//     alone;
//   - the work it causes (signatures made and checked for it, challenges)
//     is rate-limited per subnet and in total (Config.StrangerRate,
//     Config.StrangerRateTotal).

const (
	cookieRotate = 2 * time.Minute // a cookie is valid for one to two rotations
	cookieMask   = 1<<48 - 1       // the MAC's share of a cookie nonce
	maxLimited   = 4096            // subnets rate-limited at once
)

// stranger reports whether a frame from sender over p comes from a
// stranger.
func (o *Overlay) stranger(sender ID, p path) bool {
	if p.relayed() || o.linked(sender, p) {
		return false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.awaiting[p.addr] == 0
}

// strangerWork takes a token for work done for a stranger at p: false (and
// counted) when its subnet or all strangers together are over their rate.
func (o *Overlay) strangerWork(p path) bool {
	if o.strangers.allow(Subnet(p.addr.Addr()), time.Now()) {
		return true
	}
	o.ctr.rateLimited.Add(1)
	return false
}

// challenge asks id to prove over p that it holds its key, with no state:
// the Ping's nonce is a cookie (cookieFor) checked when the Pong comes back.
func (o *Overlay) challenge(id ID, p path) {
	b := o.frame(wire.TypePing, 9)
	o.sendPath(id, p, wire.Ping{Nonce: o.cookieFor(id, p, time.Now()), Flags: o.myFlags(p) | wire.FlagWantProof}.Append(b))
}

// cookieFor returns a challenge nonce for id over p: the time in
// milliseconds (its low 16 bits, for the round-trip time) and 48 bits of
// MAC over it, id and p.
func (o *Overlay) cookieFor(id ID, p path, now time.Time) uint64 {
	ms := uint16(now.UnixMilli())
	o.mu.Lock()
	key := o.cookieKeys[0]
	o.mu.Unlock()
	return uint64(ms)<<48 | cookieMAC(key, ms, id, p)
}

// cookieRTT reports whether nonce is a cookie this node made for id over p
// in the last rotation or two, and the time since.
func (o *Overlay) cookieRTT(nonce uint64, id ID, p path, now time.Time) (time.Duration, bool) {
	ms := uint16(nonce >> 48)
	o.mu.Lock()
	keys := o.cookieKeys
	o.mu.Unlock()
	for _, key := range keys {
		if hmac.Equal(binary.BigEndian.AppendUint64(nil, cookieMAC(key, ms, id, p)), binary.BigEndian.AppendUint64(nil, nonce&cookieMask)) {
			return time.Duration(uint16(now.UnixMilli())-ms) * time.Millisecond, true
		}
	}
	return 0, false
}

func cookieMAC(key [32]byte, ms uint16, id ID, p path) uint64 {
	m := hmac.New(sha256.New, key[:])
	var b [2 + 32 + 1 + 32]byte
	binary.BigEndian.PutUint16(b[:], ms)
	copy(b[2:], id[:])
	if p.relayed() {
		b[34] = 'r'
		via := p.relay()
		copy(b[35:], via[:])
	} else {
		a, _ := p.addr.MarshalBinary()
		copy(b[35:], a)
	}
	m.Write(b[:])
	return binary.BigEndian.Uint64(m.Sum(nil)) & cookieMask
}

// rotateCookiesLocked starts a new cookie key every cookieRotate, keeping
// the previous one.
func (o *Overlay) rotateCookiesLocked(now time.Time) {
	if now.Sub(o.cookieRotated) < cookieRotate {
		return
	}
	o.cookieRotated = now
	o.cookieKeys[1] = o.cookieKeys[0]
	rand.Read(o.cookieKeys[0][:])
}

// Known reports whether addr is the address of a node this one has a
// verified direct link with (as of the last maintenance). It is cheap and lock
// free: the socket calls it for every packet, to serve contacts before
// strangers when it falls behind (nat.Socket.Prefer).
func (o *Overlay) Known(addr netip.AddrPort) bool {
	addr = unmap(addr)
	if k := o.known.Load(); k != nil && k.has(addr) {
		return true
	}
	a := o.awaited.Load()
	return a != nil && a.has(addr)
}

// updateKnownLocked rebuilds the sets Known reads, each when what it holds
// changed: the direct links (table and path cache, hundreds of addresses)
// and the addresses answers are awaited from (a few when idle, each
// liveness check adding one and taking it away).
func (o *Overlay) updateKnownLocked(now time.Time) {
	if o.awaited.Load() == nil || o.awaitGen != o.awaitBuilt {
		o.awaitBuilt = o.awaitGen
		a := knownAddrs{v4: make([]uint64, 0, len(o.awaiting))}
		for addr := range o.awaiting {
			a.add(addr)
		}
		a.sort()
		o.awaited.Store(&a)
	}
	gen := o.tab.gen + o.knownGen
	if o.known.Load() != nil && gen == o.knownBuilt {
		return // nothing it holds changed
	}
	o.knownBuilt = gen
	if o.tab.gen != o.knownTab {
		o.knownTab, o.knownAt = o.tab.gen, now
	}
	k := knownAddrs{v4: make([]uint64, 0, o.tab.len()+len(o.paths))}
	for c := range o.tab.contacts() {
		if !c.p.relayed() {
			k.add(c.p.addr)
		}
	}
	for _, vp := range o.paths {
		if !vp.p.relayed() && vp.at.since(now) < o.pathsTTL() {
			k.add(vp.p.addr)
		}
	}
	k.sort()
	o.known.Store(&k)
}

// knownAddrs is the set Known reads: sorted IPv4 addresses with their
// ports packed into a word each (8 bytes where a map of netip.AddrPort
// takes about 100), and the rest sorted as they are.
type knownAddrs struct {
	v4    []uint64
	other []netip.AddrPort
}

func packV4(a netip.AddrPort) (uint64, bool) {
	if !a.Addr().Is4() {
		return 0, false
	}
	ip := a.Addr().As4()
	return uint64(ip[0])<<40 | uint64(ip[1])<<32 | uint64(ip[2])<<24 | uint64(ip[3])<<16 | uint64(a.Port()), true
}

func (k *knownAddrs) add(a netip.AddrPort) {
	if w, ok := packV4(a); ok {
		k.v4 = append(k.v4, w)
	} else {
		k.other = append(k.other, a)
	}
}

// sort sorts both lists and drops duplicates; has needs it.
func (k *knownAddrs) sort() {
	slices.Sort(k.v4)
	k.v4 = slices.Compact(k.v4)
	slices.SortFunc(k.other, netip.AddrPort.Compare)
	k.other = slices.Compact(k.other)
}

func (k *knownAddrs) has(a netip.AddrPort) bool {
	if w, ok := packV4(a); ok {
		_, found := slices.BinarySearch(k.v4, w)
		return found
	}
	_, found := slices.BinarySearchFunc(k.other, a, netip.AddrPort.Compare)
	return found
}

// rateLimit is a token bucket per subnet, and one for all subnets together.
// It holds at most maxLimited subnets: buckets full again are forgotten, and
// while it is full a new subnet is refused.
type rateLimit struct {
	mu        sync.Mutex
	rate      float64 // tokens a second, per subnet
	totalRate float64 // tokens a second, all subnets together
	total     bucket
	subnets   map[netip.Prefix]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

// take refills b at rate (burst: twice the rate) and takes a token.
func (b *bucket) take(rate float64, now time.Time) bool {
	burst := 2 * rate
	if b.at.IsZero() {
		b.tokens = burst
	} else {
		b.tokens = min(burst, b.tokens+rate*now.Sub(b.at).Seconds())
	}
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func newRateLimit(perSubnet, total int) *rateLimit {
	return &rateLimit{rate: float64(perSubnet), totalRate: float64(total), subnets: make(map[netip.Prefix]*bucket)}
}

// allow takes a token for subnet s and one from the total.
func (r *rateLimit) allow(s netip.Prefix, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.subnets[s]
	if b == nil {
		if len(r.subnets) >= maxLimited {
			r.pruneLocked(now)
			if len(r.subnets) >= maxLimited {
				return false
			}
		}
		b = &bucket{}
		r.subnets[s] = b
	}
	if !b.take(r.rate, now) {
		return false
	}
	return r.total.take(r.totalRate, now)
}

// pruneLocked forgets the subnets whose buckets are full again. A Go map
// keeps the memory of its largest size, so the subnets left move to a map
// of their own size: a node that met a thousand strangers while it joined
// does not keep room for them.
func (r *rateLimit) pruneLocked(now time.Time) {
	pruned := false
	for s, b := range r.subnets {
		if b.tokens+r.rate*now.Sub(b.at).Seconds() >= 2*r.rate {
			delete(r.subnets, s)
			pruned = true
		}
	}
	if pruned {
		m := make(map[netip.Prefix]*bucket, len(r.subnets))
		for s, b := range r.subnets {
			m[s] = b
		}
		r.subnets = m
	}
}

// prune forgets the subnets whose buckets are full again.
func (r *rateLimit) prune(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pruneLocked(now)
}

// len returns the number of subnets remembered.
func (r *rateLimit) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.subnets)
}
