package p2psock

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v2"
	"github.com/quic-go/quic-go"

	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/nat"
	"github.com/p2psock/p2psock/overlay"
)

// An ICE session finds the path of one connection: the connecting node
// (controlling) sends an offer through the overlay, the peer (controlled)
// answers in the offer's acknowledgement, both trickle their candidates as
// they gather them, and ICE checks run on both nodes' sockets. Then QUIC
// runs on the selected pair: on the node's own socket when this end of the
// pair is a host or reflexive candidate, over the ICE connection when it is a
// relay candidate. See docs/PROTOCOL.md, "Signalling".

const (
	maxSessions        = 256              // ICE sessions in progress per node
	maxSessionsPerPeer = 4                // incoming ICE sessions in progress per peer
	answerTimeout      = 15 * time.Second // the controlled side's bound on ICE and the QUIC handshake
	relayQueryWait     = 2 * time.Second  // bound on asking contacts for a relay
	relayCredTTL       = time.Hour        // lifetime of the relay credentials a node hands out
)

// errYield ends this node's outgoing attempt when the peer's simultaneous
// offer goes ahead instead.
var errYield = errors.New("p2psock: simultaneous connect, the peer's attempt goes ahead")

// session is one ICE session in progress.
type session struct {
	id       [8]byte
	peer     ID
	outgoing bool
	ufrag    string
	pwd      string
	answer   []byte // the reply to the offer, resent on a retransmitted offer

	mu         sync.Mutex
	agent      *ice.Agent
	agentOnce  sync.Once
	pending    []ice.Candidate // remote candidates that came before the agent
	relayAddrs map[string]bool // the peer's relay candidates

	out       chan ice.Candidate // local candidates to trickle
	trickle   chan struct{}      // closed when trickling may start
	trickleOn sync.Once
	failed    chan struct{} // closed when ICE fails
	failOnce  sync.Once
}

func newSession(peer ID, outgoing bool) *session {
	s := &session{peer: peer, outgoing: outgoing, relayAddrs: make(map[string]bool),
		out: make(chan ice.Candidate, 64), trickle: make(chan struct{}), failed: make(chan struct{})}
	rand.Read(s.id[:])
	s.ufrag, s.pwd = iceString(16), iceString(32)
	return s
}

// iceString returns n random characters of the ICE credential alphabet.
func iceString(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[b[i]&63]
	}
	return string(b)
}

// addRemote adds the peer's candidates, or keeps them until the agent exists.
func (s *session) addRemote(cands []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, raw := range cands {
		c, err := ice.UnmarshalCandidate(raw)
		if err != nil {
			continue
		}
		if c.Type() == ice.CandidateTypeRelay {
			s.relayAddrs[net.JoinHostPort(c.Address(), fmt.Sprint(c.Port()))] = true
		}
		if s.agent == nil {
			if len(s.pending) < 4*wire.MaxCandidates {
				s.pending = append(s.pending, c)
			}
			continue
		}
		s.agent.AddRemoteCandidate(c)
	}
}

// setAgent attaches the agent and gives it the candidates kept so far.
func (s *session) setAgent(a *ice.Agent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.agent = a
	for _, c := range s.pending {
		a.AddRemoteCandidate(c)
	}
	s.pending = nil
}

// remoteEnd returns the address of the selected pair's remote candidate,
// and whether it is a relay candidate of the peer: by its type, or, for a
// peer-reflexive candidate learned from a check, by the relay candidates the
// peer signalled.
func (s *session) remoteEnd(pair *ice.CandidatePair) (*net.UDPAddr, bool) {
	addr := &net.UDPAddr{IP: net.ParseIP(pair.Remote.Address()), Port: pair.Remote.Port()}
	if pair.Remote.Type() == ice.CandidateTypeRelay {
		return addr, true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return addr, s.relayAddrs[addr.String()]
}

func (s *session) fail() { s.failOnce.Do(func() { close(s.failed) }) }

// closeAgent closes the session's agent, once: pion's Agent.Close must not
// run twice at the same time, and several paths end a session.
func (s *session) closeAgent() {
	s.mu.Lock()
	a := s.agent
	s.mu.Unlock()
	if a != nil {
		s.agentOnce.Do(func() { a.Close() })
	}
}

func (s *session) startTrickle() { s.trickleOn.Do(func() { close(s.trickle) }) }

// sessionStats counts signalling events.
type sessionStats struct {
	badSignals atomic.Uint64 // malformed signalling or relay messages
	noPath     atomic.Uint64 // ICE sessions that found no path
}

// hostCandidates are the host candidates an offer or answer carries (the
// agent trickles them too, and the peer drops the copies): with them the
// peer checks host pairs at once, and a pair it finds works is not held back
// as peer-reflexive. None when the node uses relays only.
func (n *Node) hostCandidates() []string {
	if n.cfg.ForceRelay {
		return nil
	}
	c := n.ice.HostCandidates()
	return c[:min(len(c), wire.MaxCandidates)]
}

// newAgent creates s's agent, starts trickling its candidates and gathering;
// relay says whether to gather relay candidates.
func (n *Node) newAgent(ctx context.Context, s *session, relay bool) (*ice.Agent, error) {
	cfg := nat.AgentConfig{STUN: n.stunServers(), Relay: relay, RelayOnly: n.cfg.ForceRelay,
		LocalUfrag: s.ufrag, LocalPwd: s.pwd}
	if relay || n.cfg.ForceRelay {
		cfg.TURN = n.turnServers(ctx)
	}
	a, err := n.ice.NewAgent(cfg)
	if err != nil {
		return nil, err
	}
	a.OnCandidate(func(c ice.Candidate) {
		if c == nil {
			return
		}
		select {
		case s.out <- c:
		default:
		}
	})
	a.OnConnectionStateChange(func(st ice.ConnectionState) {
		if st == ice.ConnectionStateFailed {
			s.fail()
		}
	})
	s.setAgent(a)
	n.st.wg.Add(1)
	go func() {
		defer n.st.wg.Done()
		n.trickle(ctx, s)
	}()
	if err := a.GatherCandidates(); err != nil {
		s.closeAgent()
		return nil, err
	}
	return a, nil
}

// trickle sends the session's local candidates to the peer as they come.
func (n *Node) trickle(ctx context.Context, s *session) {
	select {
	case <-s.trickle:
	case <-ctx.Done():
		return
	}
	for {
		var batch []string
		select {
		case c := <-s.out:
			batch = append(batch, c.Marshal())
		case <-ctx.Done():
			return
		}
	more:
		for len(batch) < wire.MaxCandidates {
			select {
			case c := <-s.out:
				batch = append(batch, c.Marshal())
			default:
				break more
			}
		}
		msg, err := wire.AppendSignal(nil, wire.Signal{Kind: wire.SignalCandidates, Session: s.id, Candidates: batch})
		if err != nil {
			continue
		}
		if _, _, err := n.ov.SendService(ctx, wire.ServiceSignal, msg, s.peer.Key(), false); err != nil {
			n.cfg.Logger.Debug("trickle", "peer", s.peer.String()[:8], "err", err)
		}
	}
}

func (n *Node) addSession(s *session) error {
	n.st.mu.Lock()
	defer n.st.mu.Unlock()
	if n.st.closed {
		return net.ErrClosed
	}
	if len(n.st.sessions) >= maxSessions {
		return fmt.Errorf("p2psock: %d connection attempts in progress", maxSessions)
	}
	n.st.sessions[s.id] = s
	return nil
}

// incomingFrom counts the incoming sessions in progress from peer; st.mu is
// held.
func (st *streams) incomingFrom(peer ID) int {
	k := 0
	for _, s := range st.sessions {
		if s.peer == peer && !s.outgoing {
			k++
		}
	}
	return k
}

func (n *Node) dropSession(s *session) {
	n.st.mu.Lock()
	delete(n.st.sessions, s.id)
	n.st.mu.Unlock()
}

// wantRelay reports whether this node should offer relay candidates from the
// start: behind a NAT that maps per destination, no direct pair can form with
// a peer behind a port-restricted or symmetric NAT.
func (n *Node) wantRelay() bool {
	return n.cfg.ForceRelay || (!n.cfg.ignoreNAT && n.ov.Info().Symmetric)
}

// offerRelay reports whether a connecting node offers relay candidates in
// its first attempt: when it is behind a NAT and knows a relay. They cost an
// allocation for the length of the ICE session, and are nominated only if no
// direct pair answered first; without them, a NAT whose type the overlay has
// not detected yet would cost a failed attempt (5 s) before the fallback.
// One side's relay candidates are enough: the other side reaches the relay
// from its own socket.
func (n *Node) offerRelay(ctx context.Context) bool {
	if n.wantRelay() {
		return true
	}
	if n.cfg.ignoreNAT || n.ov.Info().Public {
		return false
	}
	return len(n.turnServers(ctx)) > 0
}

// dialPeer sets up a connection to remote. If the first attempt finds no
// path and a relay is available, it tries again with both sides relayed.
func (n *Node) dialPeer(ctx context.Context, remote ID) (*peerConn, error) {
	relay := n.offerRelay(ctx)
	pc, err := n.attempt(ctx, remote, relay, false)
	if errors.Is(err, ErrNoPath) && !relay && ctx.Err() == nil && len(n.turnServers(ctx)) > 0 {
		n.cfg.Logger.Debug("no direct path, retrying through a relay", "peer", remote.String()[:8])
		pc, err = n.attempt(ctx, remote, true, true)
	}
	return pc, err
}

// attempt is one ICE session as the controlling side, then the QUIC
// handshake on the selected path.
func (n *Node) attempt(ctx context.Context, remote ID, relay, wantRelay bool) (*peerConn, error) {
	s := newSession(remote, true)
	if err := n.addSession(s); err != nil {
		return nil, err
	}
	defer n.dropSession(s)
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(n.st.ctx, cancel)()
	agent, err := n.newAgent(actx, s, relay)
	if err != nil {
		return nil, err
	}
	ownAgent := true
	defer func() {
		if ownAgent {
			s.closeAgent()
		}
	}()

	offer := wire.Signal{Kind: wire.SignalOffer, Session: s.id, Ufrag: s.ufrag, Pwd: s.pwd, Candidates: n.hostCandidates()}
	if relay {
		offer.Flags |= wire.SignalFlagRelay
	}
	if wantRelay {
		offer.Flags |= wire.SignalFlagWantRelay
	}
	msg, err := wire.AppendSignal(nil, offer)
	if err != nil {
		return nil, err
	}
	reply, _, err := n.ov.SendService(actx, wire.ServiceSignal, msg, remote.Key(), false)
	if err != nil {
		return nil, err
	}
	ans, err := wire.ParseSignal(reply)
	if err != nil {
		n.st.stats.badSignals.Add(1)
		return nil, fmt.Errorf("p2psock: bad answer from peer: %w", err)
	}
	switch ans.Kind {
	case wire.SignalAnswer:
	case wire.SignalReject:
		if ans.Reason == wire.RejectConflict {
			return nil, errYield
		}
		return nil, ErrRefused
	default:
		return nil, fmt.Errorf("p2psock: unexpected signal %d from peer", ans.Kind)
	}
	s.addRemote(ans.Candidates)
	s.startTrickle()

	go func() {
		select {
		case <-s.failed:
			cancel()
		case <-actx.Done():
		}
	}()
	ic, err := agent.Dial(actx, ans.Ufrag, ans.Pwd)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		n.st.stats.noPath.Add(1)
		return nil, ErrNoPath
	}
	pair, err := agent.GetSelectedCandidatePair()
	if err != nil || pair == nil {
		return nil, ErrNoPath
	}
	tls := n.clientTLS(remote)
	if pair.Local.Type() == ice.CandidateTypeRelay {
		pconn := nat.NewPacketConn(ic, s.closeAgent)
		ownAgent = false
		tr := &quic.Transport{Conn: pconn}
		qc, err := tr.Dial(ctx, pconn.RemoteAddr(), tls, quicConfig())
		if err != nil {
			tr.Close()
			pconn.Close()
			return nil, n.handshakeErr(ctx, err)
		}
		return &peerConn{id: remote, qc: qc, relayed: true, tr: tr}, nil
	}
	raddr, relayed := s.remoteEnd(pair)
	qc, err := n.sock.Transport().Dial(ctx, raddr, tls, quicConfig())
	if err != nil {
		return nil, n.handshakeErr(ctx, err)
	}
	pc := &peerConn{id: remote, qc: qc, relayed: relayed}
	if relayed { // the peer's relay side needs this agent's answers (see answerPath)
		pc.closeAgent, ownAgent = s.closeAgent, false
	}
	return pc, nil
}

func (n *Node) handshakeErr(ctx context.Context, err error) error {
	switch {
	case isIdentityErr(err):
		return fmt.Errorf("%w (%v)", ErrPeerIdentity, err)
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return fmt.Errorf("p2psock: QUIC handshake: %w", err)
}

// handleSignal is the signalling service's handler. It runs on the packet
// path, so it only records state and starts goroutines.
func (n *Node) handleSignal(m overlay.Message) ([]byte, bool) {
	sig, err := wire.ParseSignal(m.Data)
	if err != nil {
		n.st.stats.badSignals.Add(1)
		return nil, true
	}
	from := m.From
	switch sig.Kind {
	case wire.SignalOffer:
		return n.onOffer(from, sig), true
	case wire.SignalClose:
		n.st.mu.Lock()
		pc := n.st.peers[from]
		if pc != nil {
			delete(n.st.peers, from)
		}
		n.st.mu.Unlock()
		if pc != nil {
			pc.peerLeft()
		}
		return nil, true
	case wire.SignalCandidates:
		n.st.mu.Lock()
		s := n.st.sessions[sig.Session]
		n.st.mu.Unlock()
		if s != nil && s.peer == from {
			s.addRemote(sig.Candidates)
		}
		return nil, true
	}
	n.st.stats.badSignals.Add(1)
	return nil, true
}

func (n *Node) onOffer(from ID, offer wire.Signal) []byte {
	reject := func(reason byte) []byte {
		b, _ := wire.AppendSignal(nil, wire.Signal{Kind: wire.SignalReject, Session: offer.Session, Reason: reason})
		return b
	}
	st := &n.st
	st.mu.Lock()
	if s := st.sessions[offer.Session]; s != nil {
		st.mu.Unlock()
		if s.peer != from || s.answer == nil {
			return reject(wire.RejectBusy)
		}
		return s.answer // a retransmitted offer
	}
	switch {
	case st.closed:
		st.mu.Unlock()
		return reject(wire.RejectClosing)
	case len(st.sessions) >= maxSessions || st.incomingFrom(from) >= maxSessionsPerPeer:
		st.mu.Unlock()
		return reject(wire.RejectBusy)
	}
	d := st.dials[from]
	if d != nil && !d.incoming {
		// Both nodes connect at once: the offer of the node with the smaller
		// ID goes ahead, the other attempt yields.
		if self := n.ID(); bytes.Compare(self[:], from[:]) < 0 {
			st.mu.Unlock()
			return reject(wire.RejectConflict)
		}
		d.incoming = true
		d.cancel()
	}
	if d == nil {
		d = &dial{done: make(chan struct{}), incoming: true}
		st.dials[from] = d
	}
	s := newSession(from, false)
	s.id = offer.Session
	relay := n.wantRelay() || offer.Flags&wire.SignalFlagWantRelay != 0
	ans := wire.Signal{Kind: wire.SignalAnswer, Session: s.id, Ufrag: s.ufrag, Pwd: s.pwd, Candidates: n.hostCandidates()}
	if relay {
		ans.Flags |= wire.SignalFlagRelay
	}
	s.answer, _ = wire.AppendSignal(nil, ans)
	st.sessions[s.id] = s
	st.wg.Add(1)
	st.mu.Unlock()
	s.startTrickle()
	go func() {
		defer st.wg.Done()
		n.answer(s, d, offer, relay)
	}()
	return s.answer
}

// answer runs the controlled side of session s, to complete d.
func (n *Node) answer(s *session, d *dial, offer wire.Signal, relay bool) {
	defer n.dropSession(s)
	ctx, cancel := context.WithTimeout(n.st.ctx, answerTimeout)
	defer cancel()
	err := n.answerPath(ctx, s, d, offer, relay)
	if err != nil {
		n.cfg.Logger.Debug("incoming connection failed", "peer", s.peer.String()[:8], "err", err)
	}
	n.st.mu.Lock()
	if n.st.dials[s.peer] == d {
		delete(n.st.dials, s.peer)
		if err == nil {
			err = ErrNoPath
		}
		d.err = err
		close(d.done)
	}
	n.st.mu.Unlock()
}

func (n *Node) answerPath(ctx context.Context, s *session, d *dial, offer wire.Signal, relay bool) error {
	agent, err := n.newAgent(ctx, s, relay)
	if err != nil {
		return err
	}
	s.addRemote(offer.Candidates)
	go func() {
		select {
		case <-s.failed:
			s.closeAgent()
		case <-ctx.Done():
		}
	}()
	ic, err := agent.Accept(ctx, offer.Ufrag, offer.Pwd)
	if err != nil {
		s.closeAgent()
		n.st.stats.noPath.Add(1)
		return ErrNoPath
	}
	pair, err := agent.GetSelectedCandidatePair()
	if err != nil || pair == nil {
		s.closeAgent()
		return ErrNoPath
	}
	if pair.Local.Type() == ice.CandidateTypeRelay {
		// The peer's QUIC packets arrive through the relay: listen on a
		// transport over the ICE connection for the one connection.
		pconn := nat.NewPacketConn(ic, s.closeAgent)
		tr := &quic.Transport{Conn: pconn}
		ln, err := tr.Listen(n.serverTLS(), quicConfig())
		if err != nil {
			tr.Close()
			pconn.Close()
			return err
		}
		n.st.wg.Add(1)
		go func() {
			defer n.st.wg.Done()
			n.acceptConns(ln, tr, s.peer)
		}()
		select {
		case <-d.done:
			return nil
		case <-ctx.Done():
			tr.Close()
			pconn.Close()
			return ctx.Err()
		}
	}
	// This end is the node's socket: the peer dials the node's own QUIC
	// listener, which adopts the connection and completes d. The agent is no
	// longer needed after that, unless the peer's end is its relay
	// candidate: the peer's agent keeps checking the pair through the relay,
	// and fails the path (closing its allocation) if nothing answers, so the
	// agent lives as long as the connection (peerConn.closeAgent).
	_, keep := s.remoteEnd(pair)
	if keep {
		n.st.mu.Lock()
		n.st.viaRelay[s.peer] = s
		n.st.mu.Unlock()
		defer func() {
			n.st.mu.Lock()
			if n.st.viaRelay[s.peer] == s {
				delete(n.st.viaRelay, s.peer)
			}
			n.st.mu.Unlock()
		}()
	}
	select {
	case <-d.done:
		if !keep || d.pc == nil || d.pc.keeps != s {
			s.closeAgent()
		}
		return nil
	case <-ctx.Done():
		s.closeAgent()
		return ctx.Err()
	}
}

// stunServers lists the STUN servers agents ask for their server-reflexive
// address: Config.STUNServers, then two of the node's direct contacts,
// public ones first (every node answers STUN on its own port). A public node
// needs none.
func (n *Node) stunServers() []string {
	out := append([]string(nil), n.cfg.STUNServers...)
	if n.ov.Info().Public {
		return out
	}
	for _, c := range n.ov.DirectContacts(2) {
		out = append(out, c.Addr.String())
	}
	return out
}

// relayCache holds the relays this node may allocate on.
type relayCache struct {
	mu      sync.Mutex
	servers []nat.TURNServer
	expires time.Time
}

// turnServers returns the configured relays and those offered by public
// contacts (asked once, then cached while their credentials last).
func (n *Node) turnServers(ctx context.Context) []nat.TURNServer {
	out := append([]nat.TURNServer(nil), n.relays...)
	rc := &n.st.relays
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if time.Now().After(rc.expires) {
		rc.servers = n.askRelays(ctx)
		ttl := relayCredTTL / 2
		if len(rc.servers) == 0 {
			ttl = 5 * time.Second // ask again soon: contacts change
		}
		rc.expires = time.Now().Add(ttl)
	}
	return append(out, rc.servers...)
}

// askRelays asks up to three directly linked contacts (public ones first),
// in parallel, for a relay.
func (n *Node) askRelays(ctx context.Context) []nat.TURNServer {
	ctx, cancel := context.WithTimeout(ctx, relayQueryWait)
	defer cancel()
	req, _ := wire.AppendRelayMsg(nil, wire.RelayMsg{Kind: wire.RelayRequest})
	contacts := n.ov.DirectContacts(3)
	got := make([]*nat.TURNServer, len(contacts))
	var wg sync.WaitGroup
	for i, c := range contacts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reply, _, err := n.ov.SendService(ctx, wire.ServiceRelay, req, c.ID.Key(), false)
			if err != nil {
				return
			}
			m, err := wire.ParseRelayMsg(reply)
			if err != nil {
				n.st.stats.badSignals.Add(1)
				return
			}
			if m.Kind == wire.RelayOffer {
				addr := netip.AddrPortFrom(c.Addr.Addr(), m.Port)
				got[i] = &nat.TURNServer{Addr: addr.String(), Username: m.Username, Password: m.Password}
			}
		}()
	}
	wg.Wait()
	var out []nat.TURNServer
	for _, t := range got {
		if t != nil {
			out = append(out, *t)
		}
	}
	return out
}

// handleRelay answers relay requests: an offer if this node runs a relay.
func (n *Node) handleRelay(m overlay.Message) ([]byte, bool) {
	req, err := wire.ParseRelayMsg(m.Data)
	if err != nil || req.Kind != wire.RelayRequest {
		n.st.stats.badSignals.Add(1)
		return nil, true
	}
	if n.relay == nil {
		b, _ := wire.AppendRelayMsg(nil, wire.RelayMsg{Kind: wire.RelayNone})
		return b, true
	}
	u, p := n.relay.Credentials(relayCredTTL)
	b, _ := wire.AppendRelayMsg(nil, wire.RelayMsg{Kind: wire.RelayOffer, Port: uint16(n.relay.Port()), Username: u, Password: p})
	return b, true
}

// parseRelayURL parses "turn://user:password@host:port" (or "turn:…").
func parseRelayURL(s string) (nat.TURNServer, error) {
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
