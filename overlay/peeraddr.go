package overlay

import "context"

// LookupDisjointPeers is LookupDisjoint with the address of each node
// found, for the services that pick sets by distance and must keep them
// diverse (Diverse): the address this node reaches it at directly if it
// has a verified link with it, else the address the lookup found it at
// (invalid for a node known only through a relay). The nodes come in
// LookupDisjoint's order; the first trusted of them are the nodes no path
// contradicted, the others come after them.
func (o *Overlay) LookupDisjointPeers(ctx context.Context, key Key) (peers []Peer, trusted int, err error) {
	if o.isClosed() {
		return nil, 0, o.errClosed("lookup")
	}
	r := o.lookupDisjoint(ctx, key)
	if o.isClosed() {
		return nil, 0, o.errClosed("lookup")
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	peers = make([]Peer, len(r.cands))
	for i, c := range r.cands {
		peers[i] = Peer{ID: c.id, Addr: c.addr, Public: c.public}
		if p, _, ok := o.knownPathLocked(c.id); ok {
			if p.relayed() {
				peers[i].Addr = c.addr
			} else {
				peers[i].Addr = p.addr
			}
		}
	}
	return peers, r.trusted, nil
}
