package overlay

import (
	"context"
	"net/netip"
	"slices"
	"sync"

	"github.com/p2psock/p2psock/internal/wire"
)

// LookupDiverse finds up to n live nodes closest to key, at most perSubnet
// of them in one subnet (Diverse), with each node's address: the set a
// service picks by distance (a replica set) with identities ground next to
// key on one network taking perSubnet places at most.
//
// It is LookupDisjoint, then, if the K nodes that lookup found do not make
// n diverse ones (a crowd on one network hides the nodes behind it), an
// iterative lookup whose shortlist is itself diverse: seeded with the nodes
// found and this node's closest contacts, it queries the closest nodes of
// subnets not yet represented until no closer one is named. The nodes come
// nearest first, except that nodes whose answers other paths contradicted
// (LookupDisjoint) come after the others; trusted is how many are not
// contradicted. A node's address is the one this node reaches it at directly
// if it has a verified link with it, else the address the lookup found it at
// (invalid for a node known only through a relay: such a node is not
// limited).
func (o *Overlay) LookupDiverse(ctx context.Context, key Key, perSubnet, n int) (peers []Peer, trusted int, err error) {
	if o.isClosed() {
		return nil, 0, o.errClosed("lookup")
	}
	r := o.lookupDisjoint(ctx, key)
	doubted := map[ID]bool{}
	for _, c := range r.cands[r.trusted:] {
		doubted[c.id] = true
	}
	cands := r.cands
	if len(Diverse(cands, o.candIP, perSubnet, n)) < n && len(cands) >= o.cfg.K {
		cands = o.widen(ctx, key, cands, perSubnet)
	}
	if o.isClosed() {
		return nil, 0, o.errClosed("lookup")
	}
	slices.SortStableFunc(cands, func(a, b candidate) int {
		switch {
		case doubted[a.id] == doubted[b.id]:
			return cmpDistance(a.id.Key(), b.id.Key(), key)
		case doubted[b.id]:
			return -1
		}
		return 1
	})
	cands = DiverseFill(cands, o.candIP, perSubnet, n) // filled beyond perSubnet only when too few subnets answered
	peers = make([]Peer, len(cands))
	for i, c := range cands {
		peers[i] = Peer{ID: c.id, Addr: o.candAddr(c), Public: c.public}
		if !doubted[c.id] {
			trusted++
		}
	}
	return peers, trusted, nil
}

// candAddr is the address of a candidate: its direct path's if this node
// has one, else the one it was found at.
func (o *Overlay) candAddr(c candidate) netip.AddrPort {
	o.mu.Lock()
	defer o.mu.Unlock()
	if p, _, ok := o.knownPathLocked(c.id); ok && !p.relayed() {
		return p.addr
	}
	return c.addr
}

// candIP is candAddr's IP address, what Diverse limits.
func (o *Overlay) candIP(c candidate) netip.Addr { return o.candAddr(c).Addr() }

// widen is an iterative lookup for target whose shortlist holds at most
// perSubnet nodes of a subnet, seeded with found (nodes that answered) and
// this node's closest contacts. It returns the nodes that answered.
func (o *Overlay) widen(ctx context.Context, target Key, found []candidate, perSubnet int) []candidate {
	type state struct {
		cand          candidate
		queried, live bool
	}
	var mu sync.Mutex
	known := map[ID]*state{}
	add := func(c candidate, live bool) {
		if c.id == o.self {
			return
		}
		if s := known[c.id]; s != nil {
			s.live = s.live || live
			return
		}
		known[c.id] = &state{cand: c, live: live}
	}
	for _, c := range found {
		add(c, true)
	}
	o.mu.Lock()
	for _, c := range o.tab.closest(target, 4*o.cfg.K, func(c *contact) bool { return !c.suspect.IsZero() }) {
		add(candidate{id: c.id, addr: c.p.addr, public: c.public}, false)
	}
	o.mu.Unlock()
	for ctx.Err() == nil && !o.isClosed() {
		mu.Lock()
		var list []candidate
		for _, s := range known {
			if !s.queried || s.live {
				list = append(list, s.cand)
			}
		}
		mu.Unlock()
		slices.SortFunc(list, func(a, b candidate) int { return cmpDistance(a.id.Key(), b.id.Key(), target) })
		var batch []*state
		mu.Lock()
		for _, c := range Diverse(list, o.candIP, perSubnet, o.cfg.K) {
			if s := known[c.id]; !s.queried && len(batch) < o.cfg.Alpha {
				s.queried = true
				batch = append(batch, s)
			}
		}
		mu.Unlock()
		if len(batch) == 0 {
			break
		}
		var wg sync.WaitGroup
		for _, s := range batch {
			wg.Go(func() {
				nodes, err := o.query(ctx, s.cand, target)
				mu.Lock()
				defer mu.Unlock()
				s.live = err == nil
				for _, n := range nodes {
					if !usableNamed(n) {
						continue
					}
					add(candidate{id: n.ID, addr: unmap(n.Addr), public: n.Flags&wire.FlagPublic != 0, introducer: s.cand.id}, false)
				}
			})
		}
		wg.Wait()
	}
	mu.Lock()
	defer mu.Unlock()
	var out []candidate
	for _, s := range known {
		if s.live {
			out = append(out, s.cand)
		}
	}
	return out
}
