package streams

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"sync"

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

const (
	maxSessions        = 256 // ICE sessions in progress per node
	maxSessionsPerPeer = 4   // incoming ICE sessions in progress per peer
	maxPending         = 4 * wire.MaxCandidates
	outQueue           = 64 // local candidates waiting to be trickled
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

	mu         sync.Mutex
	agent      *ice.Agent
	agentOnce  sync.Once
	pending    []ice.Candidate // remote candidates that came before the agent
	relayAddrs map[string]bool // the peer's relay candidates

	out       chan ice.Candidate // local candidates to trickle
	trickle   chan struct{}      // closed when trickling may start
	trickleOn sync.Once
	failed    context.Context // done when ICE fails, or the engine's lifetime ends
	fail      context.CancelFunc
}

// newSession returns a session with a random ID and fresh credentials,
// which fails at the latest when life ends.
func newSession(life context.Context, peer overlay.ID, outgoing bool) *session {
	s := &session{peer: peer, outgoing: outgoing, relayAddrs: make(map[string]bool),
		out: make(chan ice.Candidate, outQueue), trickle: make(chan struct{})}
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

// addRemote adds the peer's candidates, or keeps them (up to maxPending)
// until the agent exists. Candidates that do not parse are ignored.
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
			if len(s.pending) < maxPending {
				s.pending = append(s.pending, c)
			}
			continue
		}
		_ = s.agent.AddRemoteCandidate(c)
	}
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
	if len(e.sessions) >= maxSessions {
		return fmt.Errorf("p2psock: %d connection attempts in progress", maxSessions)
	}
	e.sessions[s.id] = s
	return nil
}

// incomingFromLocked counts the incoming sessions in progress from peer.
func (e *Engine) incomingFromLocked(peer overlay.ID) int {
	k := 0
	for _, s := range e.sessions {
		if s.peer == peer && !s.outgoing {
			k++
		}
	}
	return k
}

func (e *Engine) dropSession(s *session) {
	e.mu.Lock()
	delete(e.sessions, s.id)
	e.mu.Unlock()
}

// hostCandidates are the host candidates an offer or answer carries (the
// agent trickles them too, and the peer drops the copies): with them the
// peer checks host pairs at once, and a pair it finds works is not held back
// as peer-reflexive. None when the node uses relays only.
func (e *Engine) hostCandidates() []string {
	if e.cfg.ForceRelay {
		return nil
	}
	c := e.ice.HostCandidates()
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
			return
		}
		select {
		case s.out <- c:
		default:
		}
	})
	_ = a.OnConnectionStateChange(func(st ice.ConnectionState) {
		if st == ice.ConnectionStateFailed {
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
