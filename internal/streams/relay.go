package streams

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/nat"
	"github.com/p2psock/p2psock/overlay"
)

// Relay choice: when a session gathers relay candidates, and on which TURN
// servers (docs/PROTOCOL.md, §12.5 and §12.6). The servers are those of
// Config.Relays and those the node's contacts offer, asked for with the
// relay service (4) and kept while their credentials last.

const (
	relayQueryWait = 2 * time.Second // bound on asking contacts for a relay
	relayCredTTL   = time.Hour       // lifetime of the relay credentials a node hands out
	relayAskAgain  = 5 * time.Second // how soon to ask again when no contact offered a relay
)

// wantRelay reports whether this node should offer relay candidates from the
// start: behind a NAT that maps per destination, no direct pair can form with
// a peer behind a port-restricted or symmetric NAT.
func (e *Engine) wantRelay() bool {
	return e.cfg.ForceRelay || (!e.cfg.IgnoreNAT && e.ov.Info().Symmetric)
}

// offerRelay reports whether a connecting node offers relay candidates in
// its first attempt: when it is behind a NAT and knows a relay. They cost an
// allocation for the length of the ICE session, and are nominated only if no
// direct pair answered first; without them, a NAT whose type the overlay has
// not detected yet would cost a failed attempt (5 s) before the fallback.
// One side's relay candidates are enough: the other side reaches the relay
// from its own socket.
func (e *Engine) offerRelay(ctx context.Context) bool {
	if e.wantRelay() {
		return true
	}
	if e.cfg.IgnoreNAT || e.ov.Info().Public {
		return false
	}
	return len(e.turnServers(ctx)) > 0
}

// turnServers returns the configured relays and those offered by contacts.
func (e *Engine) turnServers(ctx context.Context) []nat.TURNServer {
	out := append([]nat.TURNServer(nil), e.cfg.Relays...)
	return append(out, e.offers.get(ctx)...)
}

// relayOffers holds the relays contacts offered, and asks for them in a
// single flight: while the offers held are unexpired, get returns them at
// once; otherwise one ask runs (on a goroutine of the engine's scope, with
// the engine's lifetime context, bounded by relayQueryWait), and every
// caller that needs offers meanwhile waits for its result or for its own
// context, whichever comes first (a caller whose context ends first gets
// none and goes on without). No lock is held while the ask runs, so a caller
// that holds unexpired offers, or that gives up, is never queued behind it.
type relayOffers struct {
	ask   func(ctx context.Context) []nat.TURNServer // asks the contacts
	spawn func(func(ctx context.Context)) bool       // starts the ask; false once the engine closes

	mu      sync.Mutex
	servers []nat.TURNServer
	expires time.Time
	flight  *relayFlight // the ask in progress, if any
}

// relayFlight is one ask in progress; servers is set when done is closed.
type relayFlight struct {
	done    chan struct{}
	servers []nat.TURNServer
}

// get returns the offers held, or those of the ask in flight (starting one
// if none is), or none if ctx ends first.
func (r *relayOffers) get(ctx context.Context) []nat.TURNServer {
	r.mu.Lock()
	if time.Now().Before(r.expires) {
		s := r.servers
		r.mu.Unlock()
		return s
	}
	f := r.flight
	if f == nil {
		f = &relayFlight{done: make(chan struct{})}
		r.flight = f
		if !r.spawn(func(ctx context.Context) { r.fly(ctx, f) }) {
			r.flight = nil
			r.mu.Unlock()
			return nil
		}
	}
	r.mu.Unlock()
	select {
	case <-f.done:
		return f.servers
	case <-ctx.Done():
		return nil
	}
}

// fly runs the ask of f and keeps its result: half the credentials'
// lifetime, or relayAskAgain if no contact offered a relay (contacts
// change).
func (r *relayOffers) fly(ctx context.Context, f *relayFlight) {
	servers := r.ask(ctx)
	ttl := relayCredTTL / 2
	if len(servers) == 0 {
		ttl = relayAskAgain
	}
	r.mu.Lock()
	r.servers, r.expires, r.flight = servers, time.Now().Add(ttl), nil
	f.servers = servers
	r.mu.Unlock()
	close(f.done)
}

// askRelays asks up to three directly linked contacts (public ones first,
// one per subnet first: relayContacts), in parallel, for a relay, and
// returns the offers that came within relayQueryWait, one per subnet.
func (e *Engine) askRelays(ctx context.Context) []nat.TURNServer {
	ctx, cancel := context.WithTimeout(ctx, relayQueryWait)
	defer cancel()
	req, _ := wire.AppendRelayMsg(nil, wire.RelayMsg{Kind: wire.RelayRequest})
	contacts := relayContacts(e.ov.DirectContacts(relayCandidates), relaysAsked)
	got := make([]*nat.TURNServer, len(contacts))
	var wg sync.WaitGroup
	for i, c := range contacts {
		wg.Go(func() { got[i] = e.askRelay(ctx, c, req) })
	}
	wg.Wait()
	var out []nat.TURNServer
	for _, t := range got {
		if t != nil {
			out = append(out, *t)
		}
	}
	return diverseRelays(out)
}

// relaysAsked is the number of contacts asked for a relay; relayCandidates
// the number of direct contacts they are chosen from.
const (
	relaysAsked     = 3
	relayCandidates = 32
)

// relayContacts picks n of contacts, in their order, one per subnet first
// (overlay.Diverse), then others if there are too few subnets: the relays a
// connection depends on come from as many networks as the contacts do
// (askRelays keeps one relay per subnet).
func relayContacts(contacts []overlay.DirectContact, n int) []overlay.DirectContact {
	addr := func(c overlay.DirectContact) netip.Addr { return c.Addr.Addr() }
	out := overlay.Diverse(contacts, addr, 1, n)
	for _, c := range contacts {
		if len(out) >= n {
			break
		}
		if !slices.ContainsFunc(out, func(o overlay.DirectContact) bool { return o.ID == c.ID }) {
			out = append(out, c)
		}
	}
	return out
}

// diverseRelays keeps, in order, one relay per subnet.
func diverseRelays(servers []nat.TURNServer) []nat.TURNServer {
	return overlay.Diverse(servers, func(t nat.TURNServer) netip.Addr {
		ap, err := netip.ParseAddrPort(t.Addr)
		if err != nil {
			return netip.Addr{}
		}
		return ap.Addr()
	}, 1, -1)
}

// askRelay asks contact c for a relay; nil if it offers none.
func (e *Engine) askRelay(ctx context.Context, c overlay.DirectContact, req []byte) *nat.TURNServer {
	reply, _, err := e.ov.SendService(ctx, wire.ServiceRelay, req, c.ID.Key(), false)
	if err != nil {
		return nil
	}
	m, err := wire.ParseRelayMsg(reply)
	if err != nil {
		e.badSignals.Add(1)
		return nil
	}
	if m.Kind != wire.RelayOffer {
		return nil
	}
	addr := netip.AddrPortFrom(c.Addr.Addr(), m.Port)
	return &nat.TURNServer{Addr: addr.String(), Username: m.Username, Password: m.Password}
}

// handleRelay answers relay requests (service 4): an offer if this node
// runs a relay, else a None.
func (e *Engine) handleRelay(m overlay.Message) ([]byte, bool) {
	req, err := wire.ParseRelayMsg(m.Data)
	if err != nil || req.Kind != wire.RelayRequest {
		e.badSignals.Add(1)
		return nil, true
	}
	if e.relay == nil {
		b, _ := wire.AppendRelayMsg(nil, wire.RelayMsg{Kind: wire.RelayNone})
		return b, true
	}
	u, p := e.relay.Credentials(relayCredTTL)
	b, _ := wire.AppendRelayMsg(nil, wire.RelayMsg{Kind: wire.RelayOffer, Port: uint16(e.relay.Port()), Username: u, Password: p})
	return b, true
}

// ParseRelayURL parses a TURN relay's URL, "turn://user:password@host:port"
// or "turn:user:password@host:port" (user and password percent-encoded);
// the port defaults to 3478.
func ParseRelayURL(s string) (nat.TURNServer, error) {
	u, err := url.Parse(s)
	if err == nil && u.Opaque != "" { // turn:user:pass@host:port
		u, err = url.Parse("turn://" + u.Opaque)
	}
	if err != nil || (u.Scheme != "turn" && u.Scheme != "") || u.Host == "" {
		return nat.TURNServer{}, fmt.Errorf("p2psock: bad relay %q: want turn://user:password@host:port", s)
	}
	t := nat.TURNServer{Addr: u.Host}
	if u.User != nil {
		t.Username = u.User.Username()
		t.Password, _ = u.User.Password()
	}
	if _, _, err := net.SplitHostPort(t.Addr); err != nil {
		t.Addr = net.JoinHostPort(t.Addr, "3478")
	}
	return t, nil
}

// startRelay opens the relay's socket and starts the node's TURN server.
func (e *Engine) startRelay() (*nat.Relay, error) {
	host, port, err := net.SplitHostPort(e.cfg.RelayAddr)
	if err != nil {
		return nil, fmt.Errorf("p2psock: bad RelayAddr %q: %w", e.cfg.RelayAddr, err)
	}
	if host == "" {
		if ua, ok := e.sock.LocalAddr().(*net.UDPAddr); ok && !ua.IP.IsUnspecified() {
			host = ua.IP.String()
		}
	}
	addr := net.JoinHostPort(host, port)
	var pc net.PacketConn
	if e.cfg.Net != nil {
		pc, err = e.cfg.Net.ListenPacket("udp4", addr)
	} else {
		pc, err = net.ListenPacket("udp", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("p2psock: relay socket: %w", err)
	}
	publicIP := func() net.IP {
		if ua, ok := pc.LocalAddr().(*net.UDPAddr); ok && !ua.IP.IsUnspecified() {
			return ua.IP
		}
		if o := e.ov.Info().Observed; o.IsValid() {
			return o.Addr().AsSlice()
		}
		return nil
	}
	r, err := nat.NewRelay(nat.RelayConfig{PacketConn: pc, PublicIP: publicIP, Net: e.cfg.Net, Logger: e.cfg.Logger})
	if err != nil {
		pc.Close()
		return nil, err
	}
	return r, nil
}
