package overlay

import (
	"context"
	"slices"
	"time"

	"github.com/p2psock/p2psock/internal/wire"
)

// Light clients (Config.Client). A client is reached by ID the way any node
// is: a message to its ID is routed greedily toward it and ends at the full
// nodes closest to that ID. Those are exactly the client's proxies: it looks
// its own ID up when it joins and links to the nodes found, which verify its
// key and address (their challenge, answered by the client) and keep a path
// to it in their attached-clients table, not in their routing tables. A
// full node that has a path to the destination ID of a message hands the
// message over that path (directHop), so the proxy where routing ends hands
// it to the client.
//
// A client keeps alive only its Proxies contacts closest to its own ID,
// every KeepAlive; its other contacts (met in its lookups) are let go once
// idle. When a proxy leaves or falls silent, and every minute at most
// (Refresh, if shorter), it looks its own ID up again, so that a full node
// that has since become one of the closest learns of it. Its frames carry
// wire.FlagClient: a node never puts their sender in its routing table, and
// a client takes no finds, relay requests or introductions, and no routed
// message but those to its own ID.

// attachedClient is a light client with a verified path: it answered this
// node's challenge over p.
type attachedClient struct {
	p    path
	at   time.Time // last heard
	srtt time.Duration
}

// serves reports whether this node takes a frame with header h: a client
// takes none from another client, and serves no one.
func (o *Overlay) serves(h wire.Header) bool {
	if !o.cfg.Client {
		return true
	}
	if h.Client {
		return false
	}
	switch h.Type {
	case wire.TypeFind, wire.TypeIntro, wire.TypeRelay:
		return false
	}
	return true
}

// attachLocked records a verified path to the light client id (it answered
// a challenge over p), within Config.Clients and Config.ClientsPerSubnet.
// A client is never a contact: if id was one, it is dropped.
func (o *Overlay) attachLocked(id ID, p path, rtt time.Duration) {
	if o.cfg.Client {
		return
	}
	if o.tab.get(id) != nil {
		o.removeLocked(id)
	}
	delete(o.paths, id)
	o.knownGen++
	now := time.Now()
	ac := o.clients[id]
	switch {
	case ac != nil && ac.p == p:
	case ac == nil && len(o.clients) >= o.cfg.Clients, !o.clientFitsLocked(id, p):
		o.ctr.refusedClients.Add(1)
		return
	case ac == nil:
		ac = &attachedClient{}
		made(&o.clients)[id] = ac
		o.log.Debug("client attached", "id", id, "path", pathString(p), "clients", len(o.clients))
	}
	ac.p, ac.at, ac.srtt = p, now, rtt
	for _, ch := range o.linkWait[id] {
		close(ch)
	}
	delete(o.linkWait, id)
}

// clientFitsLocked reports whether the client id on path p fits the limit of
// clients per subnet.
func (o *Overlay) clientFitsLocked(id ID, p path) bool {
	if o.cfg.ClientsPerSubnet < 0 {
		return true
	}
	s, n := o.tab.subnetOf(p), 0
	for cid, ac := range o.clients {
		if cid != id && o.tab.subnetOf(ac.p) == s {
			n++
		}
	}
	return n < o.cfg.ClientsPerSubnet
}

// touchClientLocked records traffic from the attached client id on p; it
// reports whether id is one on p.
func (o *Overlay) touchClientLocked(id ID, p path) bool {
	ac := o.clients[id]
	if ac == nil || ac.p != p {
		return false
	}
	now := time.Now()
	if now.Sub(ac.at) > o.clientTTL() {
		return false
	}
	ac.at = now
	return true
}

// expireClientsLocked forgets the clients not heard for 3·KeepAlive.
func (o *Overlay) expireClientsLocked(now time.Time) {
	for id, ac := range o.clients {
		if now.Sub(ac.at) > o.clientTTL() {
			delete(o.clients, id)
		}
	}
}

// nextHopLocked is the contact a message toward target goes to next: for a
// full node the contact closest to target and closer than itself; for a
// client the contact closest to target, however far (a client is never
// where a message ends, but at its own ID).
func (o *Overlay) nextHopLocked(target Key, exclude []ID) *contact {
	if !o.cfg.Client {
		return o.tab.nextHop(target, exclude)
	}
	var best *contact
	for c := range o.tab.contacts() {
		if !c.suspect.IsZero() || slices.Contains(exclude, c.id) {
			continue
		}
		if best == nil || cmpDistance(c.id.Key(), best.id.Key(), target) < 0 {
			best = c
		}
	}
	return best
}

// proxiesLocked returns the IDs of a client's proxies: its Proxies live
// contacts closest to its own ID.
func (o *Overlay) proxiesLocked() []ID {
	cs := o.tab.closest(o.self.Key(), o.cfg.Proxies, func(c *contact) bool { return !c.suspect.IsZero() })
	ids := make([]ID, len(cs))
	for i, c := range cs {
		ids[i] = c.id
	}
	return ids
}

// Proxies returns the full nodes a light client keeps links with, nearest
// to its ID first; nil for a full node.
func (o *Overlay) Proxies() []ID {
	if !o.cfg.Client {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	ids := o.proxiesLocked()
	slices.SortFunc(ids, func(a, b ID) int { return cmpDistance(a.Key(), b.Key(), o.self.Key()) })
	return ids
}

// IsClient reports whether this node is a light client (Config.Client).
func (o *Overlay) IsClient() bool { return o.cfg.Client }

// AttachedClient reports whether id is a light client attached to this
// node: one that proved its key and address to it and is still heard.
func (o *Overlay) AttachedClient(id ID) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	ac := o.clients[id]
	return ac != nil && time.Since(ac.at) < o.clientTTL()
}

// proxyLostLocked starts a reattachment when a client loses a proxy.
func (o *Overlay) proxyLostLocked() {
	if o.cfg.Client && o.joined {
		o.startReattach()
	}
}

// startReattach looks this client's own ID up again in the background, so
// that the full nodes now closest to it verify it, unless one runs already.
func (o *Overlay) startReattach() {
	if !o.reattach.CompareAndSwap(false, true) {
		return
	}
	if !o.scope.Go(func(ctx context.Context) {
		defer o.reattach.Store(false)
		ctx, cancel := context.WithTimeout(ctx, o.cfg.SendTimeout)
		defer cancel()
		o.settle(ctx)
	}) {
		o.reattach.Store(false)
	}
}

// clientRefresh is how often a client looks its own ID up again.
func (o *Overlay) clientRefresh() time.Duration { return min(o.cfg.Refresh, time.Minute) }

// keepaliveClientLocked is a client's keepalive of its contacts: it returns
// the proxies to ping now (every KeepAlive, public or not: a proxy forgets
// a client not heard for 3·KeepAlive), and lets the other contacts go once
// idle for KeepAlive. It reports whether to reattach: a proxy fell silent,
// or the client has fewer than Proxies (at most every reattachGap).
func (o *Overlay) keepaliveClientLocked(now time.Time) (ping []*contact, lost bool) {
	proxies := o.proxiesLocked()
	for _, c := range o.tab.all() {
		idle := c.lastSeen.since(now)
		if !slices.Contains(proxies, c.id) {
			if idle > o.cfg.KeepAlive {
				o.tab.remove(c.id)
			}
			continue
		}
		grace := max(min(5*time.Second, o.cfg.KeepAlive/3), 2*time.Second, 4*c.rto())
		switch {
		case idle > o.cfg.KeepAlive+grace:
			o.log.Debug("proxy dead", "id", c.id, "idle", idle)
			o.tab.remove(c.id)
			lost = true
		case idle > o.cfg.KeepAlive && c.lastPing.since(now) > time.Second:
			c.lastPing = stampOf(now)
			ping = append(ping, c)
		}
	}
	if (lost || len(proxies) < o.cfg.Proxies) && o.joined && now.Sub(o.reattachAt) > reattachGap {
		o.reattachAt = now
		lost = true
	} else {
		lost = false
	}
	return ping, lost
}

// reattachGap is the shortest time between two reattachments of a client
// short of proxies (a network of fewer full nodes than Config.Proxies).
const reattachGap = 5 * time.Second
