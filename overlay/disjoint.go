package overlay

import (
	"context"
	"net/netip"
	"slices"
	"sync"

	"github.com/p2psock/p2psock/internal/wire"
)

// Lookups over disjoint paths (S/Kademlia). The closest contacts this node
// knows of are dealt out to Config.Paths paths; each path runs an iterative
// lookup of its own and never queries a node another path has queried. The
// result merges what the paths found, nearest first. A node that another
// path contradicts (it answered with contacts that leave out nodes closer to
// the target than all it named, which another path found alive) is put
// after the nodes that were not contradicted.

// disjointResult is a lookup over disjoint paths.
type disjointResult struct {
	cands   []candidate // nodes that answered, trusted first, each part nearest first
	trusted int         // cands[:trusted] are the trusted ones
}

// lookupDisjoint finds the K nodes closest to target over Config.Paths
// disjoint paths.
func (o *Overlay) lookupDisjoint(ctx context.Context, target Key) disjointResult {
	d := o.cfg.Paths
	type entry struct {
		cand    candidate
		path    int // the path that queried it, -1: none yet
		ok      bool
		answer  []ID
		queried bool
	}
	var (
		mu      sync.Mutex
		entries = map[ID]*entry{} // shared by the paths: a node is queried by one path only
		views   = make([]map[ID]bool, d)
	)
	for i := range views {
		views[i] = map[ID]bool{}
	}
	add := func(p int, c candidate) {
		if c.id == o.self {
			return
		}
		if _, ok := entries[c.id]; !ok {
			entries[c.id] = &entry{cand: c, path: -1}
		}
		views[p][c.id] = true
	}
	o.mu.Lock()
	seeds := o.tab.closest(target, o.cfg.K, func(c *contact) bool { return !c.suspect.IsZero() })
	for i, c := range seeds {
		add(i%d, candidate{id: c.id, addr: c.p.addr, public: c.public})
	}
	o.mu.Unlock()
	byDistance := func(ids []ID) {
		slices.SortFunc(ids, func(a, b ID) int { return cmpDistance(a.Key(), b.Key(), target) })
	}
	run := func(p int) {
		for ctx.Err() == nil && !o.isClosed() {
			mu.Lock()
			ids := make([]ID, 0, len(views[p]))
			for id := range views[p] {
				ids = append(ids, id)
			}
			byDistance(ids)
			var batch []*entry
			live := 0
			for _, id := range ids {
				e := entries[id]
				if live >= o.cfg.K || len(batch) >= o.cfg.Alpha {
					break
				}
				if e.path >= 0 && e.path != p {
					continue // another path's node
				}
				if e.queried && !e.ok {
					continue
				}
				live++
				if !e.queried {
					e.queried, e.path = true, p
					batch = append(batch, e)
				}
			}
			mu.Unlock()
			if len(batch) == 0 {
				return
			}
			var wg sync.WaitGroup
			for _, e := range batch {
				wg.Go(func() {
					nodes, err := o.query(ctx, e.cand, target)
					if err != nil {
						return
					}
					mu.Lock()
					defer mu.Unlock()
					e.ok = true
					for _, n := range nodes {
						e.answer = append(e.answer, ID(n.ID))
						if !usableNamed(n) {
							continue
						}
						add(p, candidate{id: n.ID, addr: unmap(n.Addr), public: n.Flags&wire.FlagPublic != 0, introducer: e.cand.id})
					}
				})
			}
			wg.Wait()
		}
	}
	var wg sync.WaitGroup
	for p := range d {
		wg.Go(func() { run(p) })
	}
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	var alive []ID
	for id, e := range entries {
		if e.ok {
			alive = append(alive, id)
		}
	}
	byDistance(alive)
	alive = alive[:min(len(alive), o.cfg.K)]
	// A node is contradicted when nodes found alive by other paths, closer
	// to the target than it and than everything it answered, are missing
	// from its answer: an honest node near the target knows its neighbours.
	// A node left out of an answer that holds Config.SubnetPerBucket nodes
	// of its subnet already does not count: the diversity limits left it
	// out (a crowd on one subnet must not make honest nodes look like liars).
	subnet := func(id ID) netip.Prefix {
		if en := entries[id]; en != nil {
			return Subnet(en.cand.addr.Addr())
		}
		return netip.Prefix{}
	}
	contradicted := func(id ID) bool {
		e := entries[id]
		if len(e.answer) == 0 {
			return false
		}
		perSubnet := map[netip.Prefix]int{}
		for _, a := range e.answer {
			if s := subnet(a); s.IsValid() {
				perSubnet[s]++
			}
		}
		limited := func(x ID) bool {
			s := subnet(x)
			return s.IsValid() && o.cfg.SubnetPerBucket > 0 && perSubnet[s] >= o.cfg.SubnetPerBucket
		}
		far := e.answer[0]
		for _, a := range e.answer {
			if cmpDistance(a.Key(), far.Key(), target) > 0 {
				far = a
			}
		}
		missing := 0
		for _, x := range alive {
			if x == id || entries[x].path == e.path || slices.Contains(e.answer, x) || limited(x) {
				continue
			}
			if cmpDistance(x.Key(), id.Key(), target) < 0 && cmpDistance(x.Key(), far.Key(), target) < 0 {
				missing++
			}
		}
		return missing >= 2
	}
	var trusted, doubted []candidate
	for _, id := range alive {
		if contradicted(id) {
			o.ctr.contradicted.Add(1)
			doubted = append(doubted, entries[id].cand)
		} else {
			trusted = append(trusted, entries[id].cand)
		}
	}
	return disjointResult{cands: append(trusted, doubted...), trusted: len(trusted)}
}

// LookupDisjoint is Lookup over Config.Paths disjoint paths: the IDs of up
// to K live nodes closest to key, nearest first, except that nodes whose
// answers other paths contradicted come after the others.
func (o *Overlay) LookupDisjoint(ctx context.Context, key Key) ([]ID, error) {
	if o.isClosed() {
		return nil, o.errClosed("lookup")
	}
	r := o.lookupDisjoint(ctx, key)
	if o.isClosed() {
		return nil, o.errClosed("lookup")
	}
	out := make([]ID, len(r.cands))
	for i, c := range r.cands {
		out[i] = c.id
	}
	return out, nil
}
