package streams

import (
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/pion/ice/v2"

	"github.com/p2psock/p2psock/nat"
)

// Port mapping (docs/PROTOCOL.md, §12.5): a node behind a NAT asks the
// router in front of it to forward a public port to its socket
// (nat.PortMapper: NAT-PMP, then UPnP-IGD), and offers the mapped address
// in its Offers and Answers as a server-reflexive candidate, which a peer
// reaches without hole punching, even from behind a NAT that maps per
// destination. Only a node the overlay sees behind a NAT asks, once, from
// a LAN address (never on loopback); the mapping is removed on Close.

// portMapPoll is how soon the engine first looks again whether the
// overlay has learned that the node is behind a NAT; the wait doubles up to
// portMapPollMax, so that a public node does not look twice a second for
// its whole life.
const (
	portMapPoll    = 500 * time.Millisecond
	portMapPollMax = 10 * time.Second
)

// portMap looks whether the node is seen behind a NAT, after portMapPoll,
// then less and less often, on a timer rather than a goroutine of its own
// (most nodes never are); once it is, a goroutine keeps a port mapping
// until the engine's lifetime ends, and removes it.
func (e *Engine) portMap() {
	var t *time.Timer
	wait := portMapPoll
	look := func() {
		if e.isClosing() {
			return
		}
		// Contacts on loopback say nothing of a router (and tests must
		// not ask the host's).
		if inf := e.ov.Info(); inf.Observed.IsValid() && !inf.Public && !inf.Observed.Addr().Unmap().IsLoopback() {
			if local, ok := e.lanAddr(); ok {
				e.scope.Go(func(life context.Context) {
					m := nat.StartPortMapper(local, netip.Addr{}, e.cfg.Logger)
					e.portMapper.Store(m)
					<-life.Done()
					m.Close()
				})
			}
			return
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		if !e.closed {
			t.Reset(wait)
			wait = min(2*wait, portMapPollMax)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t = time.AfterFunc(0, look)
	e.portMapTimer = t
}

// lanAddr returns the socket's LAN address: its own, or, bound to every
// interface, the source address of the default route; not a loopback or
// link-local one.
func (e *Engine) lanAddr() (netip.AddrPort, bool) {
	la, ok := addrPort(e.sock.LocalAddr())
	if !ok {
		return netip.AddrPort{}, false
	}
	ip := la.Addr().Unmap()
	if ip.IsUnspecified() {
		// No packet is sent: connecting a UDP socket only picks a route.
		c, err := net.Dial("udp4", "192.0.2.1:9")
		if err != nil {
			return netip.AddrPort{}, false
		}
		src, _ := addrPort(c.LocalAddr())
		c.Close()
		ip = src.Addr().Unmap()
	}
	if !ip.Is4() || ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsUnspecified() {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ip, la.Port()), true
}

// PortMapping describes the node's port mapping: the protocol and mapped
// address, "trying", "none" (no router granted one), or "off" (not asked
// for: Config.NoPortMapping, or the node is not behind a NAT).
func (e *Engine) PortMapping() string {
	m := e.portMapper.Load()
	if m == nil {
		return "off"
	}
	return m.Status()
}

// mappedPreference is the type preference (RFC 8445, §5.1.2) of the
// mapped candidate: above every other server- or peer-reflexive candidate,
// below host candidates. A peer checks the pairs toward the node's public
// IP in priority order, and its check budget for that IP (nat/checks.go)
// allows about two checks until something comes back from it: they must
// go to the mapped port, the one address of that IP that admits anyone,
// not to the node's other reflexive candidates (behind a NAT that maps per
// destination, those admit only the STUN server that saw them).
const mappedPreference = 120

// mappedCandidate returns the port mapping as a server-reflexive
// candidate, if there is one, with the priority of mappedPreference.
func (e *Engine) mappedCandidate() (string, bool) {
	m := e.portMapper.Load()
	if m == nil {
		return "", false
	}
	p, ok := m.Mapping()
	if !ok {
		return "", false
	}
	return mappedCandidateOf(p.External, m.Local())
}

// mappedCandidateOf is the candidate of the mapping of local to external.
func mappedCandidateOf(external, local netip.AddrPort) (string, bool) {
	c, err := ice.NewCandidateServerReflexive(&ice.CandidateServerReflexiveConfig{
		Network: "udp", Address: external.Addr().String(), Port: int(external.Port()), Component: 1,
		RelAddr: local.Addr().String(), RelPort: int(local.Port()),
		Priority: (1<<24)*mappedPreference + (1<<8)*0xffff + (256 - 1)})
	if err != nil {
		return "", false
	}
	return c.Marshal(), true
}

// mappingSupersedes reports whether the node's port mapping replaces its
// server-reflexive candidates: it has one, and its NAT maps per
// destination, so that each of those admits only the STUN server that saw
// it. They are not trickled then: a peer's checks toward the node's IP,
// which its check budget bounds until the IP answers, all go to the
// mapped port.
func (e *Engine) mappingSupersedes() bool {
	if _, ok := e.mappedCandidate(); !ok {
		return false
	}
	if e.hardNAT != nil {
		return e.hardNAT()
	}
	return e.ov.Info().Symmetric
}
