package overlay

import (
	"context"
	"net/netip"
	"time"

	"github.com/p2psock/p2psock/internal/wire"
)

// The filtering test (PROTOCOL.md §7.12). How a NAT filters (RFC 4787) shows
// only in whether a packet from a source the node has not sent to gets
// through. So the node asks a public contact for one probe from another
// port of the contact's IP (it gets through unless the NAT filters by
// address and port), and one from another IP of the contact's host (it
// gets through only if the NAT does not filter at all). The contact sends
// each probe only to the address it verified the node at (the node proved
// it with a signed answer to a challenge), one small probe per request,
// smaller together with its answer than the request, and at a bounded rate:
// nobody can aim it at a third party or use it to amplify.

// Filtering is a NAT's filtering behaviour (RFC 4787 §5) as CheckNAT found
// it.
type Filtering string

// The filtering behaviours CheckNAT tells apart.
const (
	// FilteringUnknown: no public contact answered the test.
	FilteringUnknown Filtering = "unknown"
	// FilteringIndependent: a probe from a host the node never sent to got
	// through (no filter, or a full-cone NAT).
	FilteringIndependent Filtering = "endpoint-independent"
	// FilteringAddress: a probe from another port of a host the node sent
	// to got through, one from a host it never sent to did not (a
	// restricted-cone NAT).
	FilteringAddress Filtering = "address-dependent"
	// FilteringAddressPort: a probe from another port of a host the node
	// sent to did not get through (a port-restricted cone or symmetric NAT).
	FilteringAddressPort Filtering = "address-and-port-dependent"
	// FilteringNotPort: a probe from another port got through, but no
	// contact could send one from another IP: endpoint-independent or
	// address-dependent.
	FilteringNotPort Filtering = "endpoint-or-address-dependent"
)

const (
	maxSeenAt         = 8  // addresses remembered in Info.SeenAt
	natProbeRate      = 2  // filtering-test probes sent per second for one subnet
	natProbeRateTotal = 50 // the same for everyone together
	natTesters        = 3  // public contacts asked, one after the other
	natTestTries      = 3  // requests sent to one contact, RTO apart
	natProbeGrace     = 300 * time.Millisecond
)

// natTest is a request of this node's in flight.
type natTest struct {
	to     ID
	addr   netip.AddrPort // where the request went
	kind   byte
	answer chan byte // the contact's answer (wire.ProbeSent, ProbeRefused)
	probe  chan struct{}
}

// ProbeSender is a Transport that can send a packet from a source other
// than its socket: from its IP and another port, or from another IP of its
// host (nat.Socket). A node whose Transport is none refuses every filtering
// test.
type ProbeSender interface {
	SendProbe(b []byte, to netip.AddrPort, otherIP bool) error
}

// onNATTest answers a contact's request for a probe.
func (o *Overlay) onNATTest(sender ID, p path, body []byte) {
	req, err := wire.ParseNATTest(body)
	if err != nil {
		o.ctr.malformed.Add(1)
		return
	}
	// Only to the address the sender proved, over a direct path.
	if p.relayed() {
		o.ctr.unknownPeer.Add(1)
		return
	}
	if !o.linked(sender, p) {
		o.ctr.unknownPeer.Add(1)
		o.maybeChallenge(sender, p)
		return
	}
	status := wire.ProbeSent
	public := o.myFlags(p)&wire.FlagPublic != 0
	ps, ok := o.tr.(ProbeSender)
	switch {
	case !public || !ok:
		status = wire.ProbeRefused
	case !o.natRate.allow(Subnet(p.addr.Addr()), time.Now()):
		o.ctr.rateLimited.Add(1)
		status = wire.ProbeRefused
	default:
		probe := wire.NATProbe{Nonce: req.Nonce, Kind: req.Kind, Status: wire.ProbeIsProbe}.Append(o.frame(wire.TypeNATProbe, 10))
		if err := ps.SendProbe(probe, p.addr, req.Kind == wire.ProbeOtherIP); err != nil {
			o.log.Debug("filtering probe not sent", "to", p.addr, "kind", req.Kind, "err", err)
			status = wire.ProbeRefused
		} else {
			o.ctr.natProbes.Add(1)
		}
	}
	o.write(p.addr, wire.NATProbe{Nonce: req.Nonce, Kind: req.Kind, Status: status}.Append(o.frame(wire.TypeNATProbe, 10)))
}

// onNATProbe takes a probe or an answer to one of this node's requests.
func (o *Overlay) onNATProbe(sender ID, p path, body []byte) {
	pr, err := wire.ParseNATProbe(body)
	if err != nil {
		o.ctr.malformed.Add(1)
		return
	}
	o.mu.Lock()
	t := o.natTests[pr.Nonce]
	o.mu.Unlock()
	if t == nil || t.to != sender || t.kind != pr.Kind || p.relayed() {
		o.ctr.replayed.Add(1)
		return
	}
	if pr.Status != wire.ProbeIsProbe {
		if p.addr != t.addr {
			o.ctr.forged.Add(1)
			return
		}
		select {
		case t.answer <- pr.Status:
		default:
		}
		return
	}
	// The probe must come from where it was asked to: the contact's IP and
	// another port, or another IP; and from no address this node talks to
	// (its filter would let that through whatever it is).
	from := p.addr
	ok := from.Addr().Is4() == t.addr.Addr().Is4()
	if t.kind == wire.ProbeOtherPort {
		ok = ok && from.Addr() == t.addr.Addr() && from.Port() != t.addr.Port()
	} else {
		ok = ok && from.Addr() != t.addr.Addr()
	}
	if !ok || o.talksTo(from, t.kind == wire.ProbeOtherIP) {
		o.ctr.forged.Add(1)
		return
	}
	select {
	case t.probe <- struct{}{}:
	default:
	}
}

// talksTo reports whether this node has a direct link with a at, or with
// a's IP when ipOnly.
func (o *Overlay) talksTo(a netip.AddrPort, ipOnly bool) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	match := func(p path) bool {
		return !p.relayed() && (p.addr == a || (ipOnly && p.addr.Addr() == a.Addr()))
	}
	for c := range o.tab.contacts() {
		if match(c.p) {
			return true
		}
	}
	for _, vp := range o.paths {
		if match(vp.p) {
			return true
		}
	}
	return false
}

// testResult is what one request found.
type testResult int

const (
	testNoAnswer testResult = iota // the contact did not answer
	testRefused                    // it sent no probe
	testBlocked                    // it sent one; none arrived
	testPassed                     // the probe arrived
)

// CheckNAT runs the filtering test (PROTOCOL.md §7.12) with up to three of
// this node's public contacts and returns what it concluded, which Info
// reports from then on. It takes a few round trips; with no public contact
// it returns FilteringUnknown at once.
func (o *Overlay) CheckNAT(ctx context.Context) (Filtering, error) {
	if o.isClosed() {
		return "", o.errClosed("checknat")
	}
	var testers []DirectContact
	for _, c := range o.DirectContacts(maxSeenAt) {
		if c.Public && len(testers) < natTesters {
			testers = append(testers, c)
		}
	}
	port, ip := testNoAnswer, testNoAnswer
	for _, c := range testers {
		if ip == testPassed || (ip == testBlocked && port != testNoAnswer && port != testRefused) {
			break
		}
		pc, ic := make(chan testResult, 1), make(chan testResult, 1)
		go func() { pc <- o.natTestOne(ctx, c, wire.ProbeOtherPort) }()
		go func() { ic <- o.natTestOne(ctx, c, wire.ProbeOtherIP) }()
		pr, ir := <-pc, <-ic
		port, ip = max(port, pr), max(ip, ir)
		if ctx.Err() != nil {
			break
		}
	}
	if o.isClosed() {
		return "", o.errClosed("checknat")
	}
	f := FilteringUnknown
	switch {
	case ip == testPassed:
		f = FilteringIndependent
	case port == testBlocked:
		f = FilteringAddressPort
	case port == testPassed && ip == testBlocked:
		f = FilteringAddress
	case port == testPassed:
		f = FilteringNotPort
	}
	o.mu.Lock()
	o.filtering = f
	o.mu.Unlock()
	return f, nil
}

// natTestOne asks c for one probe of kind and waits for it.
func (o *Overlay) natTestOne(ctx context.Context, c DirectContact, kind byte) testResult {
	t := &natTest{to: c.ID, addr: c.Addr, kind: kind, answer: make(chan byte, 1), probe: make(chan struct{}, 1)}
	nonce := randNonce()
	o.mu.Lock()
	made(&o.natTests)[nonce] = t
	o.mu.Unlock()
	defer func() {
		o.mu.Lock()
		delete(o.natTests, nonce)
		o.mu.Unlock()
	}()
	rto := (&contact{srtt: c.RTT}).rto()
	req := wire.NATTest{Nonce: nonce, Kind: kind}.Append(o.frame(wire.TypeNATTest, wire.NATTestLen-wire.HeaderLen))
	life := o.scope.Context()
	var status byte
	probed := false
wait:
	for try := 0; try < natTestTries; try++ {
		o.write(c.Addr, req)
		timer := time.NewTimer(rto << try)
		for {
			select {
			case status = <-t.answer:
				timer.Stop()
				break wait
			case <-t.probe:
				probed = true // the answer follows at once: wait for it, not for another probe
			case <-timer.C:
				if probed {
					break wait
				}
				continue wait
			case <-ctx.Done():
				timer.Stop()
				return testNoAnswer
			case <-life.Done():
				timer.Stop()
				return testNoAnswer
			}
		}
	}
	switch {
	case probed:
		return testPassed
	case status == 0:
		return testNoAnswer
	case status == wire.ProbeRefused:
		return testRefused
	}
	// The probe went out before the answer: give it the time the paths
	// may differ by.
	grace := time.NewTimer(max(natProbeGrace, 2*c.RTT))
	defer grace.Stop()
	select {
	case <-t.probe:
		return testPassed
	case <-grace.C:
	case <-ctx.Done():
	case <-life.Done():
	}
	return testBlocked
}
