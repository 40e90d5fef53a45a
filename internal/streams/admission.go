package streams

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/p2psock/p2psock/overlay"
)

// Admission of the QUIC connections peers open to the node's socket
// (docs/SECURITY.md, "Streams and connections"). A source ICE has not
// validated gets a QUIC Retry first, so a stranger makes the node keep no
// state and sends it nothing larger than its Initial. Once its address is
// validated, a connection counts, from its first packet until it closes,
// toward its IP's and its subnet's (overlay.Subnet) quotas and the node's
// total. When the total is reached, the newcomer takes the place of the
// oldest incoming connection of a peer without history; if every peer has
// history, it is refused.

// errAdmission refuses a connection in quic-go's ConnContext (the client
// sees CONNECTION_REFUSED).
var errAdmission = errors.New("p2psock: connection not admitted")

// expectedTTL bounds how long an address ICE selected stays exempt from the
// Retry and from the per-IP quotas, should its session not end.
const expectedTTL = answerTimeout

// needsRetry is the socket's Transport.VerifySourceAddress: every source
// that is not the remote end of a pair an ICE session of this node selected
// is sent a Retry.
func (e *Engine) needsRetry(addr net.Addr) bool {
	ap, ok := addrPort(addr)
	if !ok {
		return true
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	_, known := e.expected[ap]
	if !known {
		e.retries.Add(1)
	}
	return !known
}

// expect exempts addr, which an ICE session of this node selected, from the
// Retry and the per-IP quotas until the returned function is called (or
// expectedTTL has passed).
func (e *Engine) expect(addr *net.UDPAddr) func() {
	ap := addr.AddrPort()
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	e.mu.Lock()
	e.expected[ap]++
	e.mu.Unlock()
	var done bool
	release := func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		if done {
			return
		}
		done = true
		if e.expected[ap]--; e.expected[ap] <= 0 {
			delete(e.expected, ap)
		}
	}
	t := time.AfterFunc(expectedTTL, release)
	return func() {
		t.Stop()
		release()
	}
}

// connContext is the socket's Transport.ConnContext: it admits a connection
// whose source is validated, or refuses it.
func (e *Engine) connContext(ctx context.Context, ci *quic.ClientInfo) (context.Context, error) {
	ap, ok := addrPort(ci.RemoteAddr)
	if !ok {
		return nil, errAdmission
	}
	ip, subnet := ap.Addr(), overlay.Subnet(ap.Addr())
	e.mu.Lock()
	full := e.connsIn >= e.cfg.MaxConns
	e.mu.Unlock()
	var contacts map[overlay.ID]bool
	if full { // the routing table, for evictableLocked (read without e.mu)
		contacts = make(map[overlay.ID]bool)
		for _, id := range e.ov.Contacts() {
			contacts[id] = true
		}
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, errAdmission
	}
	_, exempt := e.expected[ap]
	var reason dropReason = -1
	switch {
	case !exempt && e.connsByIP[ip] >= e.cfg.MaxConnsPerIP:
		reason = dropConnIP
	case !exempt && e.connsBySubnet[subnet] >= e.cfg.MaxConnsPerSubnet:
		reason = dropConnSubnet
	}
	var victim *peerConn
	if reason < 0 && e.connsIn >= e.cfg.MaxConns {
		if victim = e.evictableLocked(contacts); victim == nil {
			reason = dropConnFull
		} else {
			delete(e.peers, victim.id)
		}
	}
	if reason >= 0 {
		e.mu.Unlock()
		e.drops.add(reason)
		return nil, errAdmission
	}
	e.connsIn++
	e.connsByIP[ip]++
	e.connsBySubnet[subnet]++
	e.mu.Unlock()
	if victim != nil {
		e.drops.add(dropConnEvicted)
		victim.qc.CloseWithError(closeEvicted, "evicted")
	}
	context.AfterFunc(ctx, func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.connsIn--
		if e.connsByIP[ip]--; e.connsByIP[ip] <= 0 {
			delete(e.connsByIP, ip)
		}
		if e.connsBySubnet[subnet]--; e.connsBySubnet[subnet] <= 0 {
			delete(e.connsBySubnet, subnet)
		}
	})
	return ctx, nil
}

// evictableLocked returns the incoming connection a newcomer may take the
// place of, or nil: the oldest of a peer without history (this node never
// dialled it, and the application never accepted a stream of it), among
// those outside the routing table (contacts) first. A routing-table contact
// is no proof of good will (anyone may join), so it is only preferred, not
// protected.
func (e *Engine) evictableLocked(contacts map[overlay.ID]bool) *peerConn {
	var victim *peerConn
	for _, pc := range e.peers {
		if !pc.incoming || pc.history.Load() {
			continue
		}
		switch {
		case victim == nil:
			victim = pc
		case contacts[pc.id] != contacts[victim.id]:
			if !contacts[pc.id] {
				victim = pc
			}
		case pc.since.Before(victim.since):
			victim = pc
		}
	}
	return victim
}

// addrPort returns addr as an unmapped netip.AddrPort.
func addrPort(addr net.Addr) (netip.AddrPort, bool) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return netip.AddrPort{}, false
	}
	ap := ua.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), ap.IsValid()
}
