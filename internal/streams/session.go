package streams

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v2"

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
// relay candidate. See docs/PROTOCOL.md, §12.4.

// The pools of sessions: this node's own Connects have theirs, so that
// offers, however many, never starve them; incoming sessions are bounded
// per origin (its ID, and its subnet when the node has a link with it), and
// when they are all taken, a new offer ends the oldest session of a peer
// without history that has made no progress (docs/SECURITY.md, "Streams and
// connections").
const (
	maxOutgoingSessions  = 128 // this node's own ICE sessions in progress
	maxIncomingSessions  = 128 // ICE sessions in progress that peers' offers started
	maxSessionsPerPeer   = 4   // incoming ICE sessions in progress per peer
	maxSessionsPerSubnet = 8   // incoming ICE sessions in progress per origin subnet
	maxRemoteCandidates  = wire.MaxCandidates
	maxPending           = maxRemoteCandidates
	outQueue             = 64 // local candidates waiting to be trickled
)

// session is the record of one ICE session in progress. Dial's attempt
// (outgoing) or the answer to a peer's offer (incoming) creates it and
// registers it in Engine.sessions; the signalling handler feeds it the
// peer's candidates.
type session struct {
	id       [8]byte
	peer     overlay.ID
	outgoing bool
	ufrag    string
	pwd      string
	answer   []byte // the reply to the offer, resent on a retransmitted offer
	since    time.Time
	subnet   netip.Prefix // the origin's subnet, if known (incoming sessions)
	history  bool         // the peer has history with this node (incoming sessions)
	progress atomic.Bool  // ICE found a working pair

	mu         sync.Mutex
	agent      *ice.Agent
	agentOnce  sync.Once
	pending    []ice.Candidate // remote candidates that came before the agent
	relayAddrs map[string]bool // the peer's relay candidates
	hostAddrs  map[string]bool // the peer's host candidates: its own socket addresses
	remote     map[string]bool // the peer's candidates so far, at most maxRemoteCandidates

	out        chan ice.Candidate // local candidates to trickle
	gathered   chan struct{}      // closed when the agent has gathered all it will
	gatherOnce sync.Once
	trickle    chan struct{} // closed when trickling may start
	trickleOn  sync.Once
	failed     context.Context // done when ICE fails, or the engine's lifetime ends
	fail       context.CancelFunc
}

// newSession returns a session with a random ID and fresh credentials,
// which fails at the latest when life ends.
func newSession(life context.Context, peer overlay.ID, outgoing bool) *session {
	s := &session{peer: peer, outgoing: outgoing, since: time.Now(),
		relayAddrs: make(map[string]bool), hostAddrs: make(map[string]bool), remote: make(map[string]bool),
		out: make(chan ice.Candidate, outQueue), trickle: make(chan struct{}), gathered: make(chan struct{})}
	s.failed, s.fail = context.WithCancel(life)
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

// addRemote adds the peer's candidates, or keeps them until the agent
// exists. Candidates that do not parse are ignored, copies too; it returns
// the number dropped past maxRemoteCandidates.
func (s *session) addRemote(cands []string) (dropped int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, raw := range cands {
		c, err := ice.UnmarshalCandidate(raw)
		if err != nil {
			continue
		}
		key := c.Marshal()
		if s.remote[key] {
			continue
		}
		if len(s.remote) >= maxRemoteCandidates {
			dropped++
			continue
		}
		s.remote[key] = true
		switch c.Type() {
		case ice.CandidateTypeRelay:
			s.relayAddrs[net.JoinHostPort(c.Address(), fmt.Sprint(c.Port()))] = true
		case ice.CandidateTypeHost:
			s.hostAddrs[net.JoinHostPort(c.Address(), fmt.Sprint(c.Port()))] = true
		}
		if s.agent == nil {
			s.pending = append(s.pending, c)
			continue
		}
		_ = s.agent.AddRemoteCandidate(c)
	}
	return dropped
}

// usableCandidates counts the candidates of cands that parse.
func usableCandidates(cands []string) int {
	n := 0
	for _, raw := range cands {
		if _, err := ice.UnmarshalCandidate(raw); err == nil {
			n++
		}
	}
	return n
}

// setAgent attaches the agent and gives it the candidates kept so far.
func (s *session) setAgent(a *ice.Agent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.agent = a
	for _, c := range s.pending {
		_ = a.AddRemoteCandidate(c)
	}
	s.pending = nil
}

// remoteEnd returns the address of the selected pair's remote candidate,
// and the kind of path it makes: relayed when it is a relay candidate of
// the peer (by its type, or, for a peer-reflexive candidate learned from a
// check, by the relay candidates the peer signalled); direct when it is the
// peer's own socket (a host candidate, or a peer-reflexive one at the
// address of a host candidate it signalled); punched otherwise, the peer's
// NAT's mapping (server- or peer-reflexive).
func (s *session) remoteEnd(pair *ice.CandidatePair) (*net.UDPAddr, overlay.PathKind) {
	addr := &net.UDPAddr{IP: net.ParseIP(pair.Remote.Address()), Port: pair.Remote.Port()}
	switch pair.Remote.Type() {
	case ice.CandidateTypeRelay:
		return addr, overlay.PathRelayed
	case ice.CandidateTypeHost:
		return addr, overlay.PathDirect
	}
	return addr, s.kindAt(addr.String())
}

// kindAt is the kind of path to the peer's address addr ("host:port"):
// relayed at a relay candidate it signalled, direct at a host candidate,
// punched (its NAT's mapping) anywhere else.
func (s *session) kindAt(addr string) overlay.PathKind {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.relayAddrs[addr]:
		return overlay.PathRelayed
	case s.hostAddrs[addr]:
		return overlay.PathDirect
	}
	return overlay.PathPunched
}

// closeAgent closes the session's agent, once: pion's Agent.Close must not
// run twice at the same time, and several paths end a session. A second
// caller returns once the first has closed it.
func (s *session) closeAgent() {
	s.mu.Lock()
	a := s.agent
	s.mu.Unlock()
	if a != nil {
		s.agentOnce.Do(func() { a.Close() })
	}
}

func (s *session) startTrickle() { s.trickleOn.Do(func() { close(s.trickle) }) }

// addSession registers an outgoing session.
func (e *Engine) addSession(s *session) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return net.ErrClosed
	}
	n := 0
	for _, o := range e.sessions {
		if o.outgoing {
			n++
		}
	}
	if n >= maxOutgoingSessions {
		return fmt.Errorf("p2psock: %d connection attempts in progress", maxOutgoingSessions)
	}
	e.sessions[s.id] = s
	return nil
}

// admitOfferLocked decides whether an offer from peer (whose subnet is
// subnet, if known, and whose history says whether it has history with this
// node) may start an incoming session: it returns the reason to refuse it,
// or -1, and the session to end to make room, if any. Engine.mu is held.
func (e *Engine) admitOfferLocked(peer overlay.ID, subnet netip.Prefix, history bool) (dropReason, *session) {
	in, fromPeer, fromSubnet := 0, 0, 0
	var victim *session
	for _, s := range e.sessions {
		if s.outgoing {
			continue
		}
		in++
		if s.peer == peer {
			fromPeer++
		}
		if subnet.IsValid() && s.subnet == subnet {
			fromSubnet++
		}
		// The oldest session of a peer without history that has not found
		// a pair; a peer with history may end one that has, too.
		if s.history || (s.progress.Load() && !history) {
			continue
		}
		if victim == nil || (victim.progress.Load() && !s.progress.Load()) ||
			(victim.progress.Load() == s.progress.Load() && s.since.Before(victim.since)) {
			victim = s
		}
	}
	switch {
	case fromPeer >= maxSessionsPerPeer:
		return dropOfferPeer, nil
	case subnet.IsValid() && fromSubnet >= maxSessionsPerSubnet && !history:
		return dropOfferSubnet, nil
	case in < maxIncomingSessions:
		return -1, nil
	case victim == nil:
		return dropOfferFull, nil
	}
	return -1, victim
}

// dropSession removes s from the sessions in progress, if it still is.
func (e *Engine) dropSession(s *session) {
	e.mu.Lock()
	if e.sessions[s.id] == s {
		delete(e.sessions, s.id)
	}
	e.mu.Unlock()
}

// remember records that peer has history with this node (it was dialled,
// or the application accepted a stream of it), for the session pools:
// at most maxKnown peers, the oldest forgotten first.
func (e *Engine) remember(peer overlay.ID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.known[peer]; !ok && len(e.known) >= maxKnown {
		var oldest overlay.ID
		var at time.Time
		for id, t := range e.known {
			if at.IsZero() || t.Before(at) {
				oldest, at = id, t
			}
		}
		delete(e.known, oldest)
	}
	e.known[peer] = time.Now()
}

// maxKnown bounds the peers with history the engine remembers.
const maxKnown = 1024

// hostCandidates are the host candidates an offer or answer carries (the
// agent trickles them too, and the peer drops the copies): with them the
// peer checks host pairs at once, and a pair it finds works is not held back
// as peer-reflexive. None when the node uses relays only.
func (e *Engine) hostCandidates() []string {
	if e.cfg.ForceRelay {
		return nil
	}
	c := e.ice.HostCandidates()
	if m, ok := e.mappedCandidate(); ok {
		c = append([]string{m}, c...)
	}
	return c[:min(len(c), wire.MaxCandidates)]
}

// newAgent creates s's agent, starts trickling its candidates (until ctx
// ends) and gathering; relay says whether to gather relay candidates.
func (e *Engine) newAgent(ctx context.Context, s *session, relay bool) (*ice.Agent, error) {
	cfg := nat.AgentConfig{STUN: e.stunServers(), Relay: relay, RelayOnly: e.cfg.ForceRelay,
		LocalUfrag: s.ufrag, LocalPwd: s.pwd}
	if relay || e.cfg.ForceRelay {
		cfg.TURN = e.turnServers(ctx)
	}
	a, err := e.ice.NewAgent(cfg)
	if err != nil {
		return nil, err
	}
	_ = a.OnCandidate(func(c ice.Candidate) {
		if c == nil {
			s.gatherOnce.Do(func() { close(s.gathered) })
			return
		}
		if c.Type() == ice.CandidateTypeServerReflexive && e.mappingSupersedes() {
			return // the offer or answer carries the mapped candidate instead
		}
		select {
		case s.out <- c:
		default:
		}
	})
	_ = a.OnConnectionStateChange(func(st ice.ConnectionState) {
		switch st {
		case ice.ConnectionStateConnected:
			s.progress.Store(true)
		case ice.ConnectionStateFailed:
			s.fail()
		}
	})
	s.setAgent(a)
	if !e.scope.Go(func(context.Context) { e.trickle(ctx, s) }) {
		s.closeAgent()
		return nil, net.ErrClosed
	}
	if err := a.GatherCandidates(); err != nil {
		s.closeAgent()
		return nil, err
	}
	return a, nil
}

// trickle sends the session's local candidates to the peer as they come,
// in batches of up to wire.MaxCandidates, until ctx ends.
func (e *Engine) trickle(ctx context.Context, s *session) {
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
		if _, _, err := e.ov.SendService(ctx, wire.ServiceSignal, msg, s.peer.Key(), false); err != nil {
			e.cfg.Logger.Debug("trickle", "peer", shortID(s.peer), "err", err)
		}
	}
}

// stunServers lists the STUN servers agents ask for their server-reflexive
// address: Config.STUNServers, then two of the node's direct contacts,
// public ones first (every node answers STUN on its own port). A public node
// needs none.
func (e *Engine) stunServers() []string {
	out := append([]string(nil), e.cfg.STUNServers...)
	if e.ov.Info().Public {
		return out
	}
	for _, c := range e.ov.DirectContacts(2) {
		out = append(out, c.Addr.String())
	}
	return out
}
