package overlay

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2psock/p2psock/internal/wire"
)

// A link is a verified path to a node: it answered a ping that asked for proof
// with a signature by the key of its ID, over that path. Links to nodes behind
// NATs are held open by keepalive pings. A node that cannot be reached directly
// (both sides' NATs refuse a hole punch) is linked through a relay: a contact
// both sides have a direct link with.

// pendingPing is a ping in flight. A node keeps one for each ping of a
// keepalive round, so it has a channel only for a ping whose answer a
// caller waits for (pingWait), and its moment is a stamp.
type pendingPing struct {
	id    ID // the node expected to answer; zero for a bootstrap ping
	p     path
	proof bool
	sent  stamp
	done  chan struct{} // closed when the answer arrived; nil if no one waits
}

// verifiedPath is a path proved recently to a node that is not in the table
// (its bucket was full); lookups use it.
type verifiedPath struct {
	p    path
	at   stamp // when it was proved or last used
	srtt time.Duration
}

// myFlags are the flags of this node's Pings and Pongs over p: Public if
// the network sees it at its own address in p's address family.
func (o *Overlay) myFlags(p path) byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	public := o.public
	if !p.relayed() {
		public = o.publicFam[b2i(p.addr.Addr().Is6())]
	}
	if public {
		return wire.FlagPublic
	}
	return 0
}

// ping sends a ping to id along p; with proof the answer must be signed.
// The ping is padded to wire.ProbeLen, so that a node that does not know
// this one yet may answer it and challenge this node in turn.
func (o *Overlay) ping(id ID, p path, proof bool) {
	o.sendPing(id, p, proof, 0, true, false)
}

// pingWait is ping, and returns a channel closed when the answer arrives.
func (o *Overlay) pingWait(id ID, p path, proof bool) <-chan struct{} {
	return o.sendPing(id, p, proof, 0, true, true)
}

// pingFlags is ping with more Ping flags set (FlagPathLost).
func (o *Overlay) pingFlags(id ID, p path, proof bool, more byte) {
	o.sendPing(id, p, proof, more, true, false)
}

// sendPing is pingFlags, the Ping padded or not. An unpadded Ping is the
// first of a keepalive round to a contact, which knows this node: it costs
// a quarter of the bytes. A node that does not know this one (any more)
// does not answer it (its answer would be larger); the next Ping of the
// round, a second later, is padded. With wait, it returns a channel closed
// when the answer arrives; without, nil.
func (o *Overlay) sendPing(id ID, p path, proof bool, more byte, pad, wait bool) <-chan struct{} {
	nonce := randNonce()
	flags := o.myFlags(p) | more
	if proof {
		flags |= wire.FlagWantProof
	}
	o.mu.Lock()
	pp := &pendingPing{id: id, p: p, proof: proof, sent: stampOf(time.Now())}
	if wait {
		pp.done = make(chan struct{})
	}
	o.pings[nonce] = pp
	o.awaitLocked(p, 1)
	o.mu.Unlock()
	padLen := 0
	if pad {
		padLen = wire.ProbeLen - wire.PingLen
	}
	b := o.frame(wire.TypePing, wire.PingLen-wire.HeaderLen+padLen)
	o.sendPath(id, p, wire.Ping{Nonce: nonce, Flags: flags, Pad: padLen}.Append(b))
	return pp.done
}

// dropPingLocked forgets the ping in flight with nonce.
func (o *Overlay) dropPingLocked(nonce uint64) {
	pp := o.pings[nonce]
	if pp == nil {
		return
	}
	delete(o.pings, nonce)
	o.awaitLocked(pp.p, -1)
}

// awaitLocked counts an answer awaited from p (n = 1) or no longer awaited
// (n = -1): a source this node awaits an answer from is no stranger.
func (o *Overlay) awaitLocked(p path, n int) {
	if p.relayed() {
		return
	}
	had := o.awaiting[p.addr] > 0
	o.awaiting = addCount(o.awaiting, &o.awaitingPeak, p.addr, n)
	if had != (o.awaiting[p.addr] > 0) {
		o.awaitGen++
	}
}

func (o *Overlay) onPing(sender ID, p path, body []byte) {
	pg, err := wire.ParsePing(body)
	if err != nil {
		o.ctr.malformed.Add(1)
		return
	}
	o.mu.Lock()
	recheck := false
	if c := o.tab.get(sender); c != nil && c.p == p {
		recheck = o.recheckPublicLocked(c, pg.Flags, time.Now())
	}
	o.mu.Unlock()
	if recheck {
		defer o.ping(sender, p, false)
	}
	pong := wire.Pong{Nonce: pg.Nonce, Flags: o.myFlags(p)}
	if !p.relayed() {
		pong.Observed = p.addr
	}
	b := pong.Append(o.frame(wire.TypePong, 32+wire.SigLen))
	proof := pg.Flags&wire.FlagWantProof != 0
	// A stranger gets no more bytes than its Ping had (the answer and a
	// challenge fit a Ping padded to wire.ProbeLen), and its share of
	// signatures.
	budget := -1
	if o.stranger(sender, p) {
		budget = wire.HeaderLen + len(body)
		size := len(b)
		if proof {
			size += wire.SigLen
		}
		if size > budget {
			o.ctr.unpaid.Add(1)
			return
		}
		if proof && !o.strangerWork(p) {
			return
		}
		budget -= size
	}
	if proof {
		b = append(b, ed25519.Sign(o.priv, wire.PongSigned(b, sender))...)
	}
	if pg.Flags&wire.FlagPathLost != 0 && !p.relayed() {
		o.onPathLost(sender, p) // before the challenge whose answer it awaits
	}
	// A padded Ping comes from a node that awaits this node's answer: the
	// challenge goes first, so that it answers the challenge before it takes
	// the Pong and, its link made, sends more. An unpadded Ping is itself a
	// stateless challenge: the Pong goes first, so that the challenger knows
	// this node when this node's challenge arrives.
	challenge := budget < 0 || budget >= wire.PingLen
	if challenge && pg.Pad > 0 {
		o.maybeChallenge(sender, p)
	}
	o.sendPath(sender, p, b)
	if proof {
		o.provedTo(sender, p, b)
	}
	if challenge && pg.Pad == 0 {
		o.maybeChallenge(sender, p)
	}
}

// maybeChallenge challenges an unknown sender, or a contact seen on a new
// path, to prove its key over that path (a stateless challenge: challenge).
// The challenges sent to strangers are rate-limited per subnet.
func (o *Overlay) maybeChallenge(id ID, p path) {
	o.mu.Lock()
	c := o.tab.get(id)
	switch {
	case c != nil && c.p == p:
		c.lastSeen = stampOf(time.Now())
		o.mu.Unlock()
		return
	case c != nil && p.relayed() && !c.p.relayed():
		o.mu.Unlock()
		return // a direct link beats a relayed one
	}
	if c == nil && o.touchClientLocked(id, p) {
		o.mu.Unlock()
		return
	}
	if c == nil {
		if vp, ok := o.paths[id]; ok && vp.p == p && vp.at.since(time.Now()) < o.pathsTTL() {
			vp.at = stampOf(time.Now())
			o.paths[id] = vp
			// A cached node whose bucket has room now takes it, as a new
			// proof would have made it do.
			if o.tab.add(&contact{id: id, p: vp.p, lastSeen: vp.at, lastPing: vp.at, srtt: vp.srtt}) == admitted {
				delete(o.paths, id)
				o.knownGen++
			}
			o.mu.Unlock()
			return
		}
	}
	o.mu.Unlock()
	// Verify it even when its bucket is full: lookups and relays need a
	// proved path to it (upsertLocked keeps it as a replacement then).
	if !p.relayed() && !o.strangerWork(p) {
		return
	}
	o.challenge(id, p)
}

func (o *Overlay) onPong(sender ID, p path, frame []byte, client bool) {
	pong, unsigned, err := wire.ParsePong(frame)
	if err != nil {
		o.ctr.malformed.Add(1)
		return
	}
	o.mu.Lock()
	pp := o.pings[pong.Nonce]
	o.mu.Unlock()
	cookie := false
	if pp == nil {
		// The answer to a stateless challenge: its nonce is a cookie for
		// this sender and path. Checking its signature is work done for a
		// stranger, rate-limited.
		rtt, ok := o.cookieRTT(pong.Nonce, sender, p, time.Now())
		if !ok {
			o.ctr.replayed.Add(1)
			return
		}
		if !p.relayed() && !o.strangerWork(p) {
			return
		}
		pp = &pendingPing{id: sender, p: p, proof: true, sent: stampOf(time.Now().Add(-rtt))}
		cookie = true
	}
	if pp.id != (ID{}) && pp.id != sender {
		o.ctr.forged.Add(1)
		return
	}
	if pp.proof && (pong.Sig == nil || !ed25519.Verify(sender[:], wire.PongSigned(unsigned, o.self), pong.Sig)) {
		o.ctr.forged.Add(1)
		return
	}
	public := pong.Flags&wire.FlagPublic != 0
	now := time.Now()
	// The proof a PathLost Ping waited for (pathlost.go); called after the
	// lock, as the callback may call back.
	if pp.proof && !p.relayed() && (cookie || pp.p == p) && o.takePathLost(sender, p.addr) {
		defer o.notePathLost(sender, p.addr)
	}

	o.mu.Lock()
	defer o.mu.Unlock()
	if !cookie {
		if o.pings[pong.Nonce] != pp {
			return // answered twice
		}
		o.dropPingLocked(pong.Nonce)
		if pp.done != nil {
			close(pp.done)
		}
	}
	rtt := pp.sent.since(now)
	if !p.relayed() && pong.Observed.IsValid() {
		o.noteObservedLocked(pong.Observed)
	}
	if pp.proof && client {
		o.attachLocked(sender, p, rtt) // client.go: never in the table
		return
	}
	if pp.proof {
		o.upsertLocked(sender, p, public, rtt)
		return
	}
	if client {
		o.touchClientLocked(sender, p)
		return
	}
	if c := o.tab.get(sender); c != nil && c.p == p {
		c.lastSeen = stampOf(now)
		c.public = public
		c.srtt = (7*c.srtt + rtt) / 8
	}
}

func (o *Overlay) noteObservedLocked(a netip.AddrPort) {
	a = unmap(a)
	if !o.takeObservedLocked(a, time.Now()) {
		return // a LAN neighbour's view, while the Internet's is fresh (observed.go)
	}
	// Two contacts seeing different ports on one address: a NAT that maps
	// per destination (symmetric), which no hole punch gets through. The
	// address before is the latest of the same family: a dual-stack node
	// is seen at one address of each.
	six := a.Addr().Is6()
	for _, prev := range slices.Backward(o.seenAt) {
		if prev.Addr().Is6() == six {
			if prev.Addr() == a.Addr() && prev.Port() != a.Port() {
				o.symmetric = true
			}
			break
		}
	}
	o.observed = a
	was := o.public
	if i := slices.Index(o.seenAt, a); i >= 0 {
		o.seenAt = slices.Delete(o.seenAt, i, i+1)
	} else if len(o.seenAt) == maxSeenAt {
		o.seenAt = slices.Delete(o.seenAt, 0, 1)
	}
	o.seenAt = append(o.seenAt, a)
	// Public per family: a dual-stack host often has a public IPv6
	// address and an IPv4 one behind a NAT.
	o.publicFam[b2i(six)] = a == o.local ||
		(a.Port() == o.local.Port() && slices.Contains(o.localIPs, a.Addr()))
	o.public = o.publicFam[0] || o.publicFam[1]
	if o.public != was {
		o.announce = true
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// announceEvery bounds how often a change of this node's publicness is
// announced to every contact (keepalive).
const announceEvery = 10 * time.Second

// recheckPublicLocked is called for a ping from contact c on its path:
// when the ping's flags say otherwise of the contact's publicness than its
// table entry, it reports whether to ping the contact (at most once in one
// to two seconds: c.rechecked is in whole seconds), whose signed-for answer
// (a Pong to this node's nonce) then sets the entry. The Ping's own flags
// are not taken: they carry no proof that the contact sent them.
func (o *Overlay) recheckPublicLocked(c *contact, flags byte, now time.Time) bool {
	s := secondsOf(now)
	if (flags&wire.FlagPublic != 0) == c.public || (c.rechecked != 0 && s-c.rechecked < 2) {
		return false
	}
	c.rechecked = s
	return true
}

// upsertLocked records a verified path to id and wakes whoever waits for it.
func (o *Overlay) upsertLocked(id ID, p path, public bool, rtt time.Duration) {
	now := time.Now()
	if c := o.tab.get(id); c != nil {
		if c.p != p {
			if p.relayed() && !c.p.relayed() {
				return // keep the direct path
			}
			if r := o.tab.admits(id, p); r != admitted {
				o.ctr.countRefusal(r) // the new path's subnet has its share: keep the old one
				return
			}
			o.log.Debug("contact path changed", "id", id, "path", pathString(p))
			c.p = p
			o.knownGen++
		}
		c.lastSeen, c.public, c.srtt = stampOf(now), public, rtt
	} else {
		c := &contact{id: id, p: p, public: public, lastSeen: stampOf(now), lastPing: stampOf(now), srtt: rtt}
		if r := o.tab.add(c); r == admitted {
			o.log.Debug("contact added", "id", id, "path", pathString(p), "public", public, "size", o.tab.len())
		} else {
			o.ctr.countRefusal(r)
			if !p.relayed() {
				o.tab.addReplacement(candidate{id: id, addr: p.addr, public: public})
			}
			if _, ok := o.paths[id]; !ok && len(o.paths) >= o.maxPaths() {
				o.evictPathLocked()
			}
			o.paths[id] = verifiedPath{p: p, at: stampOf(now), srtt: rtt}
			o.pathsPeak = max(o.pathsPeak, len(o.paths))
			o.knownGen++
		}
	}
	for _, ch := range o.linkWait[id] {
		close(ch)
	}
	delete(o.linkWait, id)
	if len(o.noLink) > 0 {
		for _, relayed := range []bool{false, true} {
			delete(o.noLink, noLinkKey{id, p.addr, relayed})
			delete(o.noLink, noLinkKey{id: id, relayed: relayed})
		}
	}
}

func pathString(p path) string {
	if p.relayed() {
		return "via " + p.relay().String()
	}
	return p.addr.String()
}

// knownPathLocked returns a verified path to id, from the table or the cache.
func (o *Overlay) knownPathLocked(id ID) (path, time.Duration, bool) {
	if c := o.tab.get(id); c != nil {
		return c.p, c.srtt, true
	}
	if ac := o.clients[id]; ac != nil && time.Since(ac.at) < o.clientTTL() {
		return ac.p, ac.srtt, true
	}
	if vp, ok := o.paths[id]; ok && vp.at.since(time.Now()) < o.pathsTTL() {
		return vp.p, vp.srtt, true
	}
	return path{}, 0, false
}

var errNoLink = errors.New("p2psock: no link")

// link establishes a verified path to a candidate: a direct ping, a hole punch
// arranged by the introducer if the candidate is behind a NAT, and as a last
// resort a path relayed by the introducer.
func (o *Overlay) link(ctx context.Context, cand candidate) (path, time.Duration, error) {
	if cand.id == o.self {
		return path{}, 0, errNoLink
	}
	o.mu.Lock()
	if p, rtt, ok := o.knownPathLocked(cand.id); ok {
		o.mu.Unlock()
		return p, rtt, nil
	}
	if o.linkFailedLocked(cand) {
		// It did not answer a moment ago: a lookup that meets a node
		// that just left does not wait for it again and again.
		o.mu.Unlock()
		return path{}, 0, errNoLink
	}
	ch := make(chan struct{})
	made(&o.linkWait)[cand.id] = append(o.linkWait[cand.id], ch)
	intro := o.introducerLocked(cand)
	o.mu.Unlock()
	defer func() {
		o.mu.Lock()
		o.linkWait[cand.id] = slices.DeleteFunc(o.linkWait[cand.id], func(x chan struct{}) bool { return x == ch })
		if len(o.linkWait[cand.id]) == 0 {
			delete(o.linkWait, cand.id)
		}
		o.mu.Unlock()
	}()

	direct := path{addr: cand.addr}
	// Steps: when (since start) and what.
	type step struct {
		at time.Duration
		do func()
	}
	var steps []step
	if cand.addr.IsValid() {
		steps = append(steps,
			step{0, func() { o.ping(cand.id, direct, true) }},
			step{250 * time.Millisecond, func() { o.ping(cand.id, direct, true) }},
			step{600 * time.Millisecond, func() { o.ping(cand.id, direct, true) }})
	}
	if intro != (ID{}) {
		if !cand.public {
			steps = append(steps, step{0, func() { o.sendIntro(intro, cand.id) }},
				step{250 * time.Millisecond, func() { o.sendIntro(intro, cand.id) }})
		}
		// If no direct path answers soon, go through the introducer (at once
		// from behind a symmetric NAT to a NATed node: a punch cannot work);
		// a direct path found later still replaces the relayed one.
		relay := viaPath(intro)
		first := 300 * time.Millisecond
		o.mu.Lock()
		if o.symmetric && !cand.public {
			first = 0
		}
		o.mu.Unlock()
		steps = append(steps,
			step{first, func() { o.ping(cand.id, relay, true) }},
			step{first + 400*time.Millisecond, func() { o.ping(cand.id, relay, true) }},
			step{first + 800*time.Millisecond, func() { o.ping(cand.id, relay, true) }})
	}
	if len(steps) == 0 {
		return path{}, 0, errNoLink
	}
	slices.SortStableFunc(steps, func(a, b step) int { return int(a.at - b.at) })
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	const giveUp = 1500 * time.Millisecond
	for i := 0; ; {
		select {
		case <-ch:
			o.mu.Lock()
			p, rtt, ok := o.knownPathLocked(cand.id)
			o.mu.Unlock()
			if ok {
				o.log.Debug("linked", "id", cand.id, "path", pathString(p), "after", time.Since(start))
				return p, rtt, nil
			}
			return path{}, 0, errNoLink
		case <-ctx.Done():
			return path{}, 0, ctx.Err()
		case <-o.done():
			return path{}, 0, o.errClosed("link")
		case <-timer.C:
			for i < len(steps) && steps[i].at <= time.Since(start) {
				steps[i].do()
				i++
			}
			next := giveUp
			if i < len(steps) {
				next = steps[i].at
			} else if time.Since(start) >= giveUp {
				o.log.Debug("link failed", "id", cand.id, "addr", cand.addr, "public", cand.public, "introducer", intro)
				o.linkFailed(cand)
				return path{}, 0, errNoLink
			}
			timer.Reset(next - time.Since(start))
		}
	}
}

// noLinkTTL is how long a node that a link to failed is not tried again at
// the same address; maxNoLink bounds how many such failures are remembered.
const (
	noLinkTTL = 10 * time.Second
	maxNoLink = 1024
)

// noLinkKey is a failed link: the node's ID at an address, with or without
// an introducer that could relay. The address is part of it, so that a liar
// who names an honest node at a wrong address does not keep this node from
// reaching it at its right one; and so is the introducer's presence, so
// that a node named first by a contact that cannot relay (one this node
// reaches through a relay itself), which direct pings alone may not reach
// behind its NAT, is still tried when a contact that can relay names it.
type noLinkKey struct {
	id      ID
	addr    netip.AddrPort
	relayed bool // an introducer could relay
}

// introducerLocked returns the contact that may introduce this node to
// cand or relay for it: cand's introducer if this node has a direct path to
// it; if this node reaches the introducer through a relay, that relay (a
// node that relays for the introducer likely has a path to its neighbours
// too, and a relay that has none drops the frames); zero if none.
func (o *Overlay) introducerLocked(cand candidate) ID {
	c := o.tab.get(cand.introducer)
	if c == nil {
		return ID{}
	}
	if !c.p.relayed() {
		return c.id
	}
	if r := o.tab.get(c.p.relay()); r != nil && !r.p.relayed() && r.id != cand.id {
		return r.id
	}
	return ID{}
}

// linkFailedLocked reports whether a link to cand failed lately: through
// an introducer that could relay, or (if cand has none) in any way.
func (o *Overlay) linkFailedLocked(cand candidate) bool {
	now := time.Now()
	failed := func(k noLinkKey) bool {
		t, ok := o.noLink[k]
		return ok && now.Sub(t) < noLinkTTL
	}
	k := noLinkKey{id: cand.id, addr: cand.addr, relayed: true}
	if failed(k) {
		return true
	}
	k.relayed = false
	return o.introducerLocked(cand) == (ID{}) && failed(k)
}

// linkFailed remembers that a link to cand failed just now.
func (o *Overlay) linkFailed(cand candidate) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.noLink) >= maxNoLink {
		now := time.Now()
		for x, t := range o.noLink {
			if now.Sub(t) >= noLinkTTL {
				delete(o.noLink, x)
			}
		}
		if len(o.noLink) >= maxNoLink {
			return // full of fresh failures: this one is tried again
		}
	}
	made(&o.noLink)[noLinkKey{id: cand.id, addr: cand.addr, relayed: o.introducerLocked(cand) != (ID{})}] = time.Now()
}

func (o *Overlay) sendIntro(intro, target ID) {
	if p, ok := o.pathTo(intro); ok && !p.relayed() {
		o.sendPath(intro, p, wire.Intro{Target: target}.Append(o.frame(wire.TypeIntro, 32)))
	}
}

// pathsTTL is how long a verified path outside the table stays usable
// without traffic: longer than the interval at which a node that has this
// one in its table checks it (livenessIntervalLocked, taken from this
// node's table as a likeness of the other's), so that its checks find the
// path still known and need no new proof.
func (o *Overlay) pathsTTL() time.Duration {
	return 3*o.cfg.KeepAlive + 2*time.Duration(o.liveness.Load())
}

// maxPaths bounds the path cache: 16·K verified paths (320 with the
// defaults), since each lives for pathsTTL. A node proved while the cache
// is full takes the place of the path used longest ago, whose node proves
// its key again when it next needs to: the node just proved is the one a
// lookup or a link waits for (link reads its path from the cache), and
// refusing it failed that lookup's step.
func (o *Overlay) maxPaths() int { return 16 * o.cfg.K }

// evictPathLocked drops the path of the cache used longest ago.
func (o *Overlay) evictPathLocked() {
	var oldest ID
	var at stamp
	for id, vp := range o.paths {
		if at.IsZero() || at.After(vp.at) {
			oldest, at = id, vp.at
		}
	}
	delete(o.paths, oldest)
}

// clientTTL is how long an attached light client stays attached without
// traffic: it pings its proxies every KeepAlive.
func (o *Overlay) clientTTL() time.Duration { return 3 * o.cfg.KeepAlive }

// directAddrLocked returns the address of a direct verified path to id, from
// the table or the path cache.
func (o *Overlay) directAddrLocked(id ID) (netip.AddrPort, bool) {
	p, _, ok := o.knownPathLocked(id)
	if !ok || p.relayed() {
		return netip.AddrPort{}, false
	}
	return p.addr, true
}

// pathTo returns the current path to contact id.
func (o *Overlay) pathTo(id ID) (path, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if c := o.tab.get(id); c != nil {
		return c.p, true
	}
	return path{}, false
}

func (o *Overlay) onIntro(sender ID, p path, body []byte) {
	in, err := wire.ParseIntro(body)
	if err != nil {
		o.ctr.malformed.Add(1)
		return
	}
	if p.relayed() || !o.linked(sender, p) {
		o.ctr.unknownPeer.Add(1)
		o.log.Debug("dropped: no link with sender", "frame", "intro", "sender", sender, "path", pathString(p))
		return
	}
	o.mu.Lock()
	taddr, ok := o.directAddrLocked(ID(in.Target))
	o.mu.Unlock()
	if !ok {
		return
	}
	b := o.frame(wire.TypePunch, 32+19)
	o.write(taddr, wire.Punch{Peer: sender, Addr: p.addr}.Append(b))
}

func (o *Overlay) onPunch(sender ID, p path, body []byte) {
	pu, err := wire.ParsePunch(body)
	if err != nil {
		o.ctr.malformed.Add(1)
		return
	}
	if !o.linked(sender, p) {
		o.ctr.unknownPeer.Add(1)
		o.log.Debug("dropped: no link with sender", "frame", "punch", "sender", sender, "path", pathString(p))
		return
	}
	peer := ID(pu.Peer)
	if peer == o.self {
		return
	}
	if cp, ok := o.pathTo(peer); ok && !cp.relayed() {
		return
	}
	o.ping(peer, path{addr: unmap(pu.Addr)}, true)
}

func (o *Overlay) onRelay(sender ID, p path, body []byte) {
	target, inner, err := wire.ParseRelay(body)
	if err != nil {
		o.ctr.malformed.Add(1)
		return
	}
	if p.relayed() || [32]byte(inner[10:42]) != sender || ID(target) == sender {
		o.ctr.malformed.Add(1)
		return
	}
	if !o.linked(sender, p) {
		o.ctr.unknownPeer.Add(1)
		o.log.Debug("dropped: no link with sender", "frame", "relay", "sender", sender, "path", pathString(p))
		o.maybeChallenge(sender, p) // the sender retries once it is verified
		return
	}
	o.mu.Lock()
	taddr, ok := o.directAddrLocked(ID(target))
	o.mu.Unlock()
	if !ok {
		o.ctr.unknownPeer.Add(1)
		o.log.Debug("dropped: relay target not linked", "target", ID(target), "sender", sender, "path", pathString(p))
		return
	}
	b := o.frame(wire.TypeRelayed, len(inner))
	o.write(taddr, append(b, inner...))
	o.ctr.relayed.Add(1)
}

func (o *Overlay) onRelayed(sender ID, p path, body []byte) {
	inner, err := wire.ParseRelayed(body)
	if err != nil {
		o.ctr.malformed.Add(1)
		return
	}
	if !o.linked(sender, p) {
		o.ctr.unknownPeer.Add(1)
		o.log.Debug("dropped: no link with sender", "frame", "relayed", "sender", sender, "path", pathString(p))
		o.maybeChallenge(sender, p) // the origin retries once the relay is verified
		return
	}
	o.handleFrame(inner, viaPath(sender))
}

func (o *Overlay) sendLeave() {
	b := wire.Leave{Timestamp: time.Now().UnixMilli()}.Append(o.frame(wire.TypeLeave, 8+wire.SigLen))
	b = append(b, ed25519.Sign(o.priv, wire.LeaveSigned(b))...)
	type target struct {
		id ID
		p  path
	}
	var ts []target
	o.mu.Lock()
	for c := range o.tab.contacts() {
		ts = append(ts, target{c.id, c.p})
	}
	// Nodes with a fresh verified path outside the table (this node's
	// bucket for them was full) likely have this node in their tables.
	for id, vp := range o.paths {
		if vp.at.since(time.Now()) < o.pathsTTL() {
			ts = append(ts, target{id, vp.p})
		}
	}
	// Attached light clients re-choose their proxies at once.
	for id, ac := range o.clients {
		ts = append(ts, target{id, ac.p})
	}
	o.mu.Unlock()
	for _, t := range ts {
		o.sendPath(t.id, t.p, b)
	}
}

func (o *Overlay) onLeave(sender ID, p path, frame []byte) {
	l, signed, sig, err := wire.ParseLeave(frame)
	if err != nil {
		o.ctr.malformed.Add(1)
		return
	}
	if !o.linked(sender, p) {
		o.ctr.unknownPeer.Add(1) // nothing to forget: not worth a signature check
		return
	}
	if !ed25519.Verify(sender[:], signed, sig) {
		o.ctr.forged.Add(1)
		return
	}
	if d := time.Since(time.UnixMilli(l.Timestamp)); d > o.cfg.ReplayWindow || d < -o.cfg.ReplayWindow {
		o.ctr.replayed.Add(1)
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if c := o.tab.get(sender); c != nil && c.p == p {
		o.log.Debug("contact left", "id", sender)
		o.ctr.left.Add(1)
		o.removeLocked(sender)
		o.proxyLostLocked()
	}
	delete(o.paths, sender)
	o.knownGen++
	delete(o.clients, sender)
}

// removeLocked drops id (and contacts relayed through it) from the table and
// links replacement candidates in the background.
func (o *Overlay) removeLocked(id ID) {
	for _, c := range o.tab.remove(id) {
		if cand, ok := o.tab.popReplacement(c.id); ok {
			o.scope.Go(func(ctx context.Context) {
				ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				defer cancel()
				if _, _, err := o.link(ctx, cand); err == nil {
					o.promote(cand.id)
				}
			})
		}
	}
}

// suspect takes a contact that missed hop acknowledgements out of routing and
// probes it: it is back when it answers a ping, removed when it does not.
func (o *Overlay) suspect(id ID) {
	o.mu.Lock()
	c := o.tab.get(id)
	if c == nil || !c.suspect.IsZero() {
		o.mu.Unlock()
		return
	}
	c.suspect = stampOf(time.Now())
	p, rto := c.p, c.rto()
	o.mu.Unlock()
	o.scope.Go(func(context.Context) {
		for try := range 3 {
			done := o.pingWait(id, p, false)
			t := time.NewTimer(rto << try)
			select {
			case <-done:
				t.Stop()
				o.mu.Lock()
				if c := o.tab.get(id); c != nil {
					c.suspect = 0
				}
				o.mu.Unlock()
				return
			case <-o.done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		o.mu.Lock()
		c := o.tab.get(id)
		switch {
		case c == nil || c.suspect.IsZero():
		case c.lastSeen.After(c.suspect) || c.lastSeen.since(time.Now()) < suspectHeard || o.floodedLocked(time.Now()):
			// It sent something lately (its answers to this node's
			// pings, not the node, were lost: a flood at its end, where
			// it pings every second), or this node's own socket is
			// flooded: keep it.
			c.suspect = 0
		default:
			o.log.Debug("contact dead", "id", id)
			o.ctr.unacked.Add(1)
			o.loseLocked(c)
			o.removeLocked(id)
		}
		o.mu.Unlock()
	})
}

// suspectHeard is how recently a suspected contact that answered none of
// the probes must have sent anything to be kept: longer than the second
// between the pings of a node whose socket is flooded (floodPings), whose
// answers are lost at its end.
const suspectHeard = 2500 * time.Millisecond

// promote moves a node with a fresh cached path into the table if its bucket
// has room.
func (o *Overlay) promote(id ID) {
	o.mu.Lock()
	defer o.mu.Unlock()
	vp, ok := o.paths[id]
	if !ok || o.tab.get(id) != nil || vp.at.since(time.Now()) > o.pathsTTL() {
		return
	}
	r := o.tab.add(&contact{id: id, p: vp.p, lastSeen: vp.at, lastPing: vp.at, srtt: vp.srtt})
	o.ctr.countRefusal(r)
	if r == admitted {
		delete(o.paths, id)
		o.knownGen++
	}
}

// keepalive pings idle contacts and drops those that stopped answering. It
// returns when it next has something to do: the earliest time a contact
// falls due, or a ping round needs its next try.
//
// A link with a NAT on either side is pinged after KeepAlive of silence, to
// hold the NAT's mapping open. Two public nodes need no keepalives: a
// contact between them is checked for liveness only once silent for
// livenessInterval (Liveness, stretched to the table's size), and these
// checks leave at most one per Liveness/livenessChecks, the most overdue
// first, so that an idle node sends a few packets a minute whatever the
// size of its table or of the network. A contact that answers none of a
// round of pings (one a second) for the round's grace is dead and dropped.
func (o *Overlay) keepalive(now time.Time) time.Time {
	type target struct {
		id  ID
		p   path
		pad bool
	}
	var ping []target
	next := now.Add(maintainMax)
	due := func(t time.Time) {
		if t.Before(next) {
			next = t
		}
	}
	o.mu.Lock()
	flooded := o.floodedLocked(now)
	if o.cfg.Client {
		proxies, reattach := o.keepaliveClientLocked(now)
		for _, c := range proxies {
			ping = append(ping, target{c.id, c.p, true})
		}
		if reattach {
			o.startReattach()
		}
		due(now.Add(time.Second))
	}
	announce := o.announce && now.Sub(o.announced) >= announceEvery
	if announce {
		o.announce, o.announced = false, now
	}
	if o.announce {
		due(o.announced.Add(announceEvery))
	}
	liveness := o.livenessIntervalLocked()
	var check *contact // the most overdue public contact, for a liveness check
	for _, c := range o.tab.all() {
		if o.cfg.Client {
			break // keepaliveClientLocked did it
		}
		if announce {
			c.lastPing = stampOf(now)
			ping = append(ping, target{c.id, c.p, true})
			continue
		}
		interval := o.cfg.KeepAlive
		checked := o.public && c.public
		if checked {
			interval = liveness
		}
		idle := c.lastSeen.since(now)
		// The keepalives' grace: 5 s with the default intervals, a third
		// of a shorter interval, but never under two pings of a round
		// (they go at most once a second) or four retransmission
		// timeouts.
		grace := max(min(5*time.Second, interval/3), 2*time.Second, 4*c.rto())
		// A round of pings is under way: begun since last heard.
		round := c.roundAt.After(c.lastSeen)
		switch {
		case round && c.roundAt.since(now) > grace && flooded:
			// This node's socket is dropping packets: the contact's
			// answers were likely lost here. Keep it and keep pinging it
			// (which keeps this node in its table) until the flood ends.
			if c.lastPing.since(now) > time.Second {
				c.lastPing = stampOf(now)
				ping = append(ping, target{c.id, c.p, true})
			}
			due(c.lastPing.time().Add(time.Second))
		case round && c.roundAt.since(now) > grace:
			o.log.Debug("contact dead", "id", c.id, "idle", idle)
			o.ctr.silent.Add(1)
			o.loseLocked(c)
			o.removeLocked(c.id)
		case round:
			if c.lastPing.since(now) > time.Second {
				c.lastPing = stampOf(now)
				ping = append(ping, target{c.id, c.p, true})
			}
			due(c.lastPing.time().Add(time.Second))
		case idle > interval && checked:
			if check == nil || check.lastSeen.After(c.lastSeen) {
				check = c
			}
		case idle > interval:
			c.lastPing, c.roundAt = stampOf(now), stampOf(now)
			ping = append(ping, target{c.id, c.p, false})
			due(now.Add(time.Second))
		default:
			due(c.lastSeen.time().Add(interval + time.Millisecond))
		}
	}
	if check != nil {
		if now.Before(o.nextCheck) {
			due(o.nextCheck)
		} else {
			o.nextCheck = now.Add(o.cfg.Liveness / livenessChecks)
			check.lastPing, check.roundAt = stampOf(now), stampOf(now)
			ping = append(ping, target{check.id, check.p, false})
			due(now.Add(time.Second))
		}
	}
	o.mu.Unlock()
	for _, t := range ping {
		if t.pad {
			o.ping(t.id, t.p, false)
		} else {
			o.sendPing(t.id, t.p, false, 0, false, false)
		}
	}
	return next
}

// livenessChecks is the most liveness checks (the first pings of rounds
// with public contacts) a public node starts per Liveness interval.
const livenessChecks = 16

// maintainMax is the longest the maintenance loop sleeps.
const maintainMax = 5 * time.Second

// livenessIntervalLocked is how long a contact between two public nodes
// may be silent before it is checked: Liveness, or as many Liveness
// intervals as the table holds livenessChecks contacts, so that checking
// every contact needs no more than livenessChecks checks per Liveness.
// With the defaults and 160 contacts: 10 minutes.
func (o *Overlay) livenessIntervalLocked() time.Duration {
	d := o.cfg.Liveness * time.Duration(max(1, o.tab.len()/livenessChecks))
	o.liveness.Store(int64(d))
	return d
}

// housekeep drops what has expired from the node's bounded tables and
// rebuilds the set of known addresses.
func (o *Overlay) housekeep(now time.Time) {
	o.mu.Lock()
	for n, pp := range o.pings {
		if pp.sent.since(now) > pingTimeout {
			o.dropPingLocked(n)
		}
	}
	o.rotateCookiesLocked(now)
	o.strangers.prune(now)
	o.prunePathLostLocked(now)
	for id, a := range o.answered {
		if now.Sub(a.at) > 10*time.Second {
			delete(o.answered, id)
		}
	}
	ttl := o.pathsTTL()
	for id, vp := range o.paths {
		if vp.at.since(now) > ttl {
			delete(o.paths, id)
			o.knownGen++
		}
	}
	o.paths = shrunk(o.paths, &o.pathsPeak) // its peak was while the node joined
	o.expireClientsLocked(now)
	o.updateKnownLocked(now)
	o.lost = slices.DeleteFunc(o.lost, func(l lostContact) bool { return now.Sub(l.at) > lostKeep })
	// More contacts lost to silence than left: likely this node's own
	// packets were lost (a flood), not theirs. Link to them again.
	recoverLost := o.joined && !o.cfg.Client && len(o.lost) > 0 && o.tab.len() < len(o.lost)
	o.mu.Unlock()
	if recoverLost && o.recovering.CompareAndSwap(false, true) {
		if !o.scope.Go(o.recoverLost) {
			o.recovering.Store(false)
		}
	}
}

// busyLocked reports whether the node has short-lived state in flight
// (partial messages, challenges answered while joining) or a set Known
// reads that no longer matches the addresses awaited: the maintenance
// loop then runs every second, as the state's timeouts are seconds.
// Pings in flight need it only when the oldest expires (pingsDueLocked):
// a liveness check's first Ping, which a contact that does not know this
// node leaves unanswered, kept an idle node waking every second for 10 s.
func (o *Overlay) busyLocked() bool {
	return o.awaitGen != o.awaitBuilt || len(o.answered) > 0 || o.reasm.len() > 0 || o.linkReasm.len() > 0
}

// pingTimeout is how long a ping in flight awaits its answer.
const pingTimeout = 10 * time.Second

// pingsDueLocked returns when the oldest ping in flight expires, or the
// zero time if none is.
func (o *Overlay) pingsDueLocked() time.Time {
	var due time.Time
	for _, pp := range o.pings {
		if t := pp.sent.time().Add(pingTimeout + time.Millisecond); due.IsZero() || t.Before(due) {
			due = t
		}
	}
	return due
}

// lostKeep is how long a contact lost to silence is tried again.
const lostKeep = 2 * time.Minute

// lostContact is a contact removed because it fell silent.
type lostContact struct {
	cand candidate
	at   time.Time
}

// loseLocked remembers a direct contact that fell silent, at most 2·K of
// them.
func (o *Overlay) loseLocked(c *contact) {
	if c == nil || c.p.relayed() {
		return
	}
	if len(o.lost) >= 2*o.cfg.K {
		o.lost = slices.Delete(o.lost, 0, 1)
	}
	o.lost = append(o.lost, lostContact{cand: candidate{id: c.id, addr: c.p.addr, public: c.public}, at: time.Now()})
}

// recoverLost links again to the contacts lost to silence, and refreshes the
// routing table (which makes this node known to its neighbours again) once
// one answers: a node whose own packets were lost in a flood is back within
// seconds of its end, not at the next refresh.
func (o *Overlay) recoverLost(ctx context.Context) {
	defer o.recovering.Store(false)
	o.mu.Lock()
	var cands []candidate
	for _, l := range o.lost {
		if o.tab.get(l.cand.id) == nil && len(cands) < 8 {
			cands = append(cands, l.cand)
		}
	}
	o.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var (
		wg     sync.WaitGroup
		linked atomic.Bool
	)
	for _, c := range cands {
		wg.Go(func() {
			lctx, lcancel := context.WithTimeout(ctx, 3*time.Second)
			defer lcancel()
			if _, _, err := o.link(lctx, c); err == nil {
				linked.Store(true)
				o.promote(c.id)
				o.mu.Lock()
				o.lost = slices.DeleteFunc(o.lost, func(l lostContact) bool { return l.cand.id == c.id })
				o.mu.Unlock()
			}
		})
	}
	wg.Wait()
	if linked.Load() {
		o.refresh(ctx)
	}
}

// floodWindow is how long after its socket last dropped a packet a node
// counts itself flooded.
const floodWindow = 5 * time.Second

// socketStats is what a Transport that counts its drops offers (nat.Socket
// does).
type socketStats interface {
	Stats() (received, sent, unhandled, queueDrops uint64)
}

// dropNotifier is what a Transport that says when it starts dropping
// packets offers (nat.Socket does).
type dropNotifier interface {
	OnDrops(func())
}

// onDrops runs when this node's socket starts dropping packets (a flood, or
// more traffic than the node takes): it starts floodPings unless it runs.
func (o *Overlay) onDrops() {
	if o.cfg.Client || !o.floodPinging.CompareAndSwap(false, true) {
		return
	}
	if !o.scope.Go(o.floodPings) {
		o.floodPinging.Store(false)
	}
}

// floodPings pings every contact once a second while this node's socket is
// dropping more than floodDrops packets a second. The contacts' pings and answers are lost here at random,
// so they would take this node for dead; its own pings reach them, and a
// contact keeps a node that sent it anything since it began to doubt it
// (suspectHeard is longer than a second). Its cost is bounded by the table:
// one ping per contact per second, while the flood lasts.
func (o *Overlay) floodPings(ctx context.Context) {
	defer o.floodPinging.Store(false)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	type target struct {
		id ID
		p  path
	}
	var ping []target
	drops := o.socketDropCount()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := time.Now()
		ping = ping[:0]
		n := o.socketDropCount()
		flooded := n-drops >= floodDrops
		drops = n
		o.mu.Lock()
		if flooded {
			for _, c := range o.tab.all() {
				if c.lastPing.since(now) >= time.Second/2 {
					c.lastPing = stampOf(now)
					ping = append(ping, target{c.id, c.p})
				}
			}
		}
		o.mu.Unlock()
		if !flooded {
			return
		}
		for _, t := range ping {
			o.ping(t.id, t.p, false)
		}
	}
}

// floodDrops is the number of packets a node's socket drops in a second
// from which it pings its contacts every second (floodPings): a queue's
// worth, more than a burst of joins drops.
const floodDrops = 64

// socketDropCount is the number of packets the node's socket dropped for a
// full queue, or 0 if its Transport does not count them.
func (o *Overlay) socketDropCount() uint64 {
	st, ok := o.tr.(socketStats)
	if !ok {
		return 0
	}
	_, _, _, drops := st.Stats()
	return drops
}

// floodedLocked reports whether this node's socket dropped packets for a
// full queue in the last floodWindow: then the silence of its contacts says
// more about the flood than about them, and it does not give them up.
func (o *Overlay) floodedLocked(now time.Time) bool {
	if drops := o.socketDropCount(); drops != o.socketDrops {
		o.socketDrops, o.droppingAt = drops, now
	}
	return !o.droppingAt.IsZero() && now.Sub(o.droppingAt) < floodWindow
}
