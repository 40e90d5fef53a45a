package overlay

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/p2psock/p2psock/internal/wire"
)

type findReply struct {
	from  ID
	nodes []wire.Contact
}

type pendingFind struct {
	id ID
	ch chan findReply
}

// find asks id, over p, for its contacts closest to target. A find to a node
// this node has no verified link with (padded true) is padded to the
// largest frame: that node may not know this one, and answers a stranger
// with no more bytes than it received.
func (o *Overlay) find(ctx context.Context, id ID, p path, rtt time.Duration, target Key, padded bool) ([]wire.Contact, error) {
	nonce := randNonce()
	ch := make(chan findReply, 1)
	o.mu.Lock()
	made(&o.finds)[nonce] = pendingFind{id: id, ch: ch}
	o.awaitLocked(p, 1)
	o.mu.Unlock()
	defer func() {
		o.mu.Lock()
		delete(o.finds, nonce)
		o.awaitLocked(p, -1)
		o.mu.Unlock()
	}()
	f := wire.Find{Nonce: nonce, Target: target}
	if padded {
		f.Pad = wire.MaxFrame - wire.FindLen
	}
	b := f.Append(o.frame(wire.TypeFind, wire.FindLen-wire.HeaderLen+f.Pad))
	rto := (&contact{srtt: rtt}).rto()
	for try := 0; try < 3; try++ {
		o.sendPath(id, p, b)
		t := time.NewTimer(rto)
		select {
		case r := <-ch:
			t.Stop()
			return r.nodes, nil
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-o.done():
			t.Stop()
			return nil, o.errClosed("lookup")
		case <-t.C:
			rto *= 2
		}
	}
	return nil, errNoLink
}

func (o *Overlay) onFind(sender ID, p path, body []byte) {
	f, err := wire.ParseFind(body)
	if err != nil {
		o.ctr.malformed.Add(1)
		return
	}
	// A stranger gets no more bytes than its Find had: the contacts and a
	// challenge if it padded the Find enough, else the challenge alone (it
	// asks again once it has answered). A Find too short for even an
	// answer naming no one (an unpadded one) is not worked on.
	stranger := o.stranger(sender, p)
	if stranger && wire.HeaderLen+nodesMin+wire.PingLen > wire.HeaderLen+len(body) {
		o.ctr.unpaid.Add(1)
		o.maybeChallenge(sender, p)
		return
	}
	o.mu.Lock()
	n := wire.Nodes{Nonce: f.Nonce, Contacts: o.closestNamedLocked(Key(f.Target), sender, min(o.cfg.K, wire.MaxContacts))}
	o.mu.Unlock()
	b := n.Append(o.frame(wire.TypeNodes, nodesMin+len(n.Contacts)*52))
	if stranger && len(b)+wire.PingLen > wire.HeaderLen+len(body) {
		o.ctr.unpaid.Add(1)
		o.maybeChallenge(sender, p)
		return
	}
	// The challenge goes first, while the sender awaits the answer.
	o.maybeChallenge(sender, p)
	o.sendPath(sender, p, b)
}

// nodesMin is the size of a Nodes body naming no one: nonce and count.
const nodesMin = 9

// closestNamedLocked returns the nodes a Find for target is answered with:
// up to n nodes closest to target, nearest first, among this node's
// contacts and the nodes it keeps a fresh direct path to in its cache (its
// bucket or its table had their subnet's share), but the sender and those
// reached through a relay, at most SubnetPerBucket of one subnet. Without
// the cache, a node of a crowded subnet (several behind one NAT) that every
// table kept out would be named by no one at an address a node elsewhere
// can use (the nodes beside it name it at a LAN address, which a requester
// elsewhere leaves out): no lookup would find it, and a light client whose
// ID is closest to it could not attach to it.
func (o *Overlay) closestNamedLocked(target Key, sender ID, n int) []wire.Contact {
	type named struct {
		c      wire.Contact
		subnet netip.Addr
	}
	cs := o.tab.closest(target, n, func(c *contact) bool { return c.id == sender || c.p.relayed() })
	all := make([]named, 0, len(cs)+len(o.paths)) // one allocation: most of the cache may pass
	for _, c := range cs {
		wc := wire.Contact{ID: c.id, Addr: c.p.addr}
		if c.public {
			wc.Flags = wire.FlagPublic
		}
		all = append(all, named{wc, o.tab.subnetOf(c.p).Addr()})
	}
	now := time.Now()
	for id, vp := range o.paths {
		if n > 0 && len(cs) == n && cmpDistance(id.Key(), cs[n-1].id.Key(), target) > 0 {
			continue // farther than every contact named: most of the cache
		}
		if id == sender || vp.p.relayed() || vp.at.since(now) >= o.pathsTTL() || o.tab.get(id) != nil {
			continue
		}
		// The cache keeps no Public flag: the requester links to it.
		all = append(all, named{wire.Contact{ID: id, Addr: vp.p.addr}, o.tab.subnetOf(vp.p).Addr()})
	}
	if len(all) > len(cs) { // the cache named some: merge them in
		slices.SortFunc(all, func(a, b named) int { return cmpDistance(ID(a.c.ID).Key(), ID(b.c.ID).Key(), target) })
		if o.tab.perBucket > 0 {
			all = Diverse(all, func(x named) netip.Addr { return x.subnet }, o.tab.perBucket, n)
		} else if len(all) > n {
			all = all[:n]
		}
	}
	out := make([]wire.Contact, len(all))
	for i, x := range all {
		out[i] = x.c
	}
	return out
}

func (o *Overlay) onNodes(sender ID, p path, body []byte) {
	n, err := wire.ParseNodes(body)
	if err != nil {
		o.ctr.malformed.Add(1)
		return
	}
	o.mu.Lock()
	pf, ok := o.finds[n.Nonce]
	o.mu.Unlock()
	if !ok {
		o.ctr.replayed.Add(1)
		return
	}
	if pf.id != sender {
		o.ctr.forged.Add(1)
		return
	}
	o.touch(sender, p)
	// A contact whose ID lacks the network's work is not one this node
	// would take: it is left out, and counted, rather than linked to.
	nodes := slices.DeleteFunc(n.Contacts, func(c wire.Contact) bool {
		if HasWork(ID(c.ID), o.difficulty) {
			return false
		}
		o.ctr.noWork.Add(1)
		return true
	})
	o.mu.Lock()
	o.unnameNarrowLocked(p, nodes) // observed.go
	o.mu.Unlock()
	select {
	case pf.ch <- findReply{from: sender, nodes: nodes}:
	default:
	}
}

// lookup finds the K nodes closest to target that this node can link with,
// querying Alpha of them at a time (iterative Kademlia lookup). It links to
// every node it queries.
func (o *Overlay) lookup(ctx context.Context, target Key) []ID {
	cs := o.lookupCandidates(ctx, target)
	out := make([]ID, len(cs))
	for i, c := range cs {
		out[i] = c.id
	}
	return out
}

// lookupCandidates is lookup returning the nodes as candidates: how this
// node learned of them.
func (o *Overlay) lookupCandidates(ctx context.Context, target Key) []candidate {
	return o.lookupUntil(ctx, target, nil)
}

// lookupUntil is lookupCandidates that also ends, before its first round
// and after each, once enough (if not nil) reports true.
func (o *Overlay) lookupUntil(ctx context.Context, target Key, enough func() bool) []candidate {
	start, rounds, failed := time.Now(), 0, 0
	defer func() {
		o.lookups.observe(start, rounds)
		o.log.Debug("lookup", "target", target, "rounds", rounds, "failed", failed, "after", time.Since(start))
	}()
	type entry struct {
		cand    candidate
		queried bool
		ok      bool
	}
	var (
		mu      sync.Mutex
		entries = map[ID]*entry{}
	)
	add := func(c candidate) {
		if c.id == o.self {
			return
		}
		if _, ok := entries[c.id]; !ok {
			entries[c.id] = &entry{cand: c}
		}
	}
	o.mu.Lock()
	for _, c := range o.tab.closest(target, o.cfg.K, nil) {
		add(candidate{id: c.id, addr: c.p.addr, public: c.public})
	}
	o.mu.Unlock()

	sorted := func() []*entry {
		out := make([]*entry, 0, len(entries))
		for _, e := range entries {
			out = append(out, e)
		}
		slices.SortFunc(out, func(a, b *entry) int { return cmpDistance(a.cand.id.Key(), b.cand.id.Key(), target) })
		return out
	}
	for ctx.Err() == nil && !o.isClosed() {
		if enough != nil && enough() {
			break
		}
		mu.Lock()
		var batch []*entry
		live := 0
		perSubnet := map[netip.Prefix]int{}
		for _, e := range sorted() {
			if live >= o.cfg.K || len(batch) >= o.cfg.Alpha {
				break
			}
			if e.queried && !e.ok {
				continue // failed: skip it, look further
			}
			if !o.diverseLocked(perSubnet, e.cand.addr) {
				continue // its subnet has its share of the nearest: look further
			}
			live++
			if !e.queried {
				e.queried = true
				batch = append(batch, e)
			}
		}
		mu.Unlock()
		if len(batch) == 0 {
			break
		}
		rounds++
		var wg sync.WaitGroup
		for _, e := range batch {
			wg.Go(func() {
				nodes, err := o.query(ctx, e.cand, target)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failed++
					return
				}
				e.ok = true
				for _, n := range nodes {
					if !usableNamed(n) {
						continue
					}
					add(candidate{id: n.ID, addr: unmap(n.Addr), public: n.Flags&wire.FlagPublic != 0, introducer: e.cand.id})
				}
			})
		}
		wg.Wait()
	}
	mu.Lock()
	defer mu.Unlock()
	var out []candidate
	perSubnet := map[netip.Prefix]int{}
	for _, e := range sorted() {
		if e.ok && o.diverseLocked(perSubnet, e.cand.addr) {
			out = append(out, e.cand)
			if len(out) == o.cfg.K {
				break
			}
		}
	}
	return out
}

// diverseLocked reports whether one more node at addr fits a set in which
// perSubnet counts the nodes of each subnet so far (Config.SubnetPerBucket
// of each), and counts it if so. An unknown address is not limited.
func (o *Overlay) diverseLocked(perSubnet map[netip.Prefix]int, addr netip.AddrPort) bool {
	if o.cfg.SubnetPerBucket < 0 || !addr.IsValid() {
		return true
	}
	s := Subnet(addr.Addr())
	if perSubnet[s] >= o.cfg.SubnetPerBucket {
		return false
	}
	perSubnet[s]++
	return true
}

// NextHop returns the contact a message toward key goes to from this node:
// the contact closest to key, strictly closer than this node, that is not
// suspect and not in exclude. ok is false when this node is the closest it
// knows of. A light client (Config.Client) is never the closest: its next
// hop is its contact closest to key, ok false only without one.
func (o *Overlay) NextHop(key Key, exclude ...ID) (id ID, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if c := o.nextHopLocked(key, exclude); c != nil {
		return c.id, true
	}
	return ID{}, false
}

// BucketHeads returns, for every routing-table bucket whose index (the
// number of leading bits its contacts share with this node) is at least
// from, one live contact of it: the split of the ID space that a broadcast
// follows.
func (o *Overlay) BucketHeads(from int) map[int]ID {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[int]ID{}
	for i := max(from, 0); i < len(o.tab.buckets); i++ {
		for _, c := range o.tab.buckets[i] {
			if c.suspect.IsZero() {
				out[i] = c.id
				break
			}
		}
	}
	return out
}

// Deliver puts a message on this node's receive queue, as if routed to it;
// it reports false when the queue is full. Services use it to hand messages
// to the application (broadcasts, for instance).
func (o *Overlay) Deliver(m Message) bool {
	_, ok, _ := o.deliverLocal(m)
	return ok
}

// Closest returns up to n IDs closest to key among this node and its
// contacts, nearest first, without asking the network. A light client
// leaves itself out.
func (o *Overlay) Closest(key Key, n int) []ID {
	o.mu.Lock()
	cs := o.tab.closest(key, n, func(c *contact) bool { return !c.suspect.IsZero() })
	o.mu.Unlock()
	out := make([]ID, 0, len(cs)+1)
	for _, c := range cs {
		out = append(out, c.id)
	}
	if !o.cfg.Client { // a client is never among the closest to a key
		out = append(out, o.self)
	}
	slices.SortFunc(out, func(a, b ID) int { return cmpDistance(a.Key(), b.Key(), key) })
	return out[:min(n, len(out))]
}

// query asks a candidate for its contacts closest to target. A node that
// says it is public is asked straight away (the answer must echo the nonce
// and come from its ID, and the node challenges us in turn); others are
// linked to first, which may take a hole punch or a relay.
func (o *Overlay) query(ctx context.Context, cand candidate, target Key) ([]wire.Contact, error) {
	o.mu.Lock()
	p, rtt, known := o.knownPathLocked(cand.id)
	failed := !known && o.linkFailedLocked(cand)
	o.mu.Unlock()
	if failed {
		return nil, errNoLink // it did not answer a moment ago
	}
	if !known && cand.public && cand.addr.IsValid() {
		nodes, err := o.find(ctx, cand.id, path{addr: cand.addr}, 0, target, true)
		if err == nil {
			return nodes, nil
		}
		if ctx.Err() == nil && !o.isClosed() {
			// A public node that answered none of three finds to its
			// address would not answer a link's pings there either:
			// gone, most likely (others still name nodes that left a
			// moment ago). Waiting for a link too doubled what each
			// of them cost a lookup.
			o.linkFailed(cand)
			return nil, errNoLink
		}
	}
	if !known {
		var err error
		if p, rtt, err = o.link(ctx, cand); err != nil {
			return nil, err
		}
	}
	return o.find(ctx, cand.id, p, rtt, target, false)
}

// Lookup returns the IDs of up to K live nodes closest to key, nearest first.
func (o *Overlay) Lookup(ctx context.Context, key Key) ([]ID, error) {
	if o.isClosed() {
		return nil, o.errClosed("lookup")
	}
	ids := o.lookup(ctx, key)
	if o.isClosed() {
		return nil, o.errClosed("lookup")
	}
	return ids, nil
}
