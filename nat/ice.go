package nat

import (
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v2"
	"github.com/pion/logging"
	"github.com/pion/stun"
	"github.com/pion/transport/v2"
)

// ICE runs the ICE side of a Socket: it answers plain STUN binding requests
// (so every node is a STUN server for its contacts), and hands every other
// STUN packet to one pion UniversalUDPMux over the Socket, which carries the
// connectivity checks of all the node's ICE agents and their
// server-reflexive discovery on the node's own port. The mux (a goroutine
// and a queue) is made when the first agent is, or the first offer or
// answer names the host candidates: until then no packet has a place to go
// in it (every check names an agent's ufrag), and ICE drops them.
type ICE struct {
	sock *Socket
	net  transport.Net

	muMux  sync.Mutex
	closed bool
	conn   *muxConn                                   // set with mux
	mux    atomic.Pointer[ice.UniversalUDPMuxDefault] // nil until first needed (muxReady)

	logger *slog.Logger
	logs   logging.LoggerFactory
	checks *checkBudget // bytes of checks toward each address (checks.go)

	stunAnswered atomic.Uint64
	stunDropped  atomic.Uint64
}

// NewICE registers the STUN range (0x00–0x03) of s. Call it before s.Start.
// nw is the network ICE agents gather on and open TURN sockets with (nil: the
// host's); logger receives pion's warnings at debug level (nil: none).
func NewICE(s *Socket, nw transport.Net, logger *slog.Logger) *ICE {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := &ICE{sock: s, net: nw, logger: logger, logs: slogFactory{logger}, checks: newCheckBudget()}
	s.Handle(0x00, 0x03, m.handle)
	return m
}

// muxReady returns the mux, made now if it is the first call; nil once m
// is closed.
func (m *ICE) muxReady() *ice.UniversalUDPMuxDefault {
	if mux := m.mux.Load(); mux != nil {
		return mux
	}
	m.muMux.Lock()
	defer m.muMux.Unlock()
	if mux := m.mux.Load(); mux != nil || m.closed {
		return mux
	}
	m.conn = &muxConn{sock: m.sock, checks: m.checks, in: make(chan packet, queueLen), done: make(chan struct{})}
	mux := ice.NewUniversalUDPMuxDefault(ice.UniversalUDPMuxParams{
		Logger:  m.logs.NewLogger("udpmux"),
		UDPConn: m.conn,
		Net:     m.net,
	})
	m.mux.Store(mux)
	return mux
}

// handle takes one STUN packet off the socket.
func (m *ICE) handle(pkt []byte, from net.Addr) {
	if len(pkt) > MaxPacket || !stun.IsMessage(pkt) {
		m.stunDropped.Add(1)
		return
	}
	m.checks.received(from, pkt)
	// A binding request without USERNAME is a plain STUN query: answer it
	// with the address it came from. ICE checks carry USERNAME and go to the
	// mux, as do all responses and indications.
	if pkt[0] == 0x00 && pkt[1] == 0x01 {
		msg := &stun.Message{Raw: append([]byte(nil), pkt...)}
		if err := msg.Decode(); err != nil {
			m.stunDropped.Add(1)
			return
		}
		if !msg.Contains(stun.AttrUsername) {
			m.answer(msg, from)
			return
		}
	}
	if m.mux.Load() == nil { // no agent, so nobody to take it
		m.stunDropped.Add(1)
		return
	}
	b := getBuf(len(pkt))
	copy(b, pkt)
	select {
	case m.conn.in <- packet{b, from}:
	default:
		m.stunDropped.Add(1)
		putBuf(b)
	}
}

func (m *ICE) answer(req *stun.Message, from net.Addr) {
	ua, ok := from.(*net.UDPAddr)
	if !ok {
		m.stunDropped.Add(1)
		return
	}
	resp, err := stun.Build(stun.NewTransactionIDSetter(req.TransactionID), stun.BindingSuccess,
		&stun.XORMappedAddress{IP: ua.IP, Port: ua.Port}, stun.Fingerprint)
	if err != nil {
		return
	}
	if m.sock.WriteTo(resp.Raw, from) == nil {
		m.stunAnswered.Add(1)
	}
}

// STUNStats returns the number of plain STUN binding requests answered and of
// STUN packets dropped (malformed, the mux fell behind, or there was no mux
// yet: no agent to take them).
func (m *ICE) STUNStats() (answered, dropped uint64) {
	return m.stunAnswered.Load(), m.stunDropped.Load()
}

// ChecksThrottled returns the number of ICE checks not sent because their
// destination had not answered enough to earn them (an offer may name
// anyone's address: the node sends no more than a small allowance there).
func (m *ICE) ChecksThrottled() uint64 { return m.checks.throttled() }

// TURNServer is a TURN relay an agent may allocate relay candidates on.
type TURNServer struct {
	Addr     string // host:port, UDP
	Username string
	Password string
}

// AgentConfig says what an ICE agent gathers.
type AgentConfig struct {
	STUN  []string     // host:port of STUN servers for server-reflexive candidates
	TURN  []TURNServer // relays; relay candidates are gathered only if Relay is set
	Relay bool
	// RelayOnly gathers relay candidates and nothing else (tests and
	// networks where direct paths are not wanted).
	RelayOnly bool
	// LocalUfrag and LocalPwd are the agent's ICE credentials; empty means
	// random ones.
	LocalUfrag, LocalPwd string
}

// Timing of ICE checks: pion's defaults wait 0.5–2 s before nominating a
// non-host pair; a node wants a direct path within a few round trips, and a
// relayed one only when no direct pair answered by then. A session in which
// no pair works fails after disconnectAfter+failAfter (5 s).
const (
	checkInterval   = 50 * time.Millisecond
	srflxMinWait    = 50 * time.Millisecond
	prflxMinWait    = 100 * time.Millisecond
	relayMinWait    = 600 * time.Millisecond
	disconnectAfter = 2 * time.Second
	failAfter       = 3 * time.Second
	keepaliveEvery  = 2 * time.Second
)

// NewAgent creates an ICE agent whose host and server-reflexive candidates
// live on the node's socket; relay candidates get sockets of their own (TURN
// channel data starts with 0x40–0x4F, which QUIC would take on the shared
// socket). Close the agent when done.
func (m *ICE) NewAgent(cfg AgentConfig) (*ice.Agent, error) {
	var urls []*stun.URI
	for _, a := range cfg.STUN {
		host, port, err := splitHostPort(a)
		if err != nil {
			return nil, err
		}
		urls = append(urls, &stun.URI{Scheme: stun.SchemeTypeSTUN, Host: host, Port: port, Proto: stun.ProtoTypeUDP})
	}
	types := []ice.CandidateType{ice.CandidateTypeHost, ice.CandidateTypeServerReflexive}
	if cfg.RelayOnly {
		types, urls = nil, nil
	}
	if cfg.Relay || cfg.RelayOnly {
		types = append(types, ice.CandidateTypeRelay)
		for _, t := range cfg.TURN {
			host, port, err := splitHostPort(t.Addr)
			if err != nil {
				return nil, err
			}
			urls = append(urls, &stun.URI{Scheme: stun.SchemeTypeTURN, Host: host, Port: port,
				Proto: stun.ProtoTypeUDP, Username: t.Username, Password: t.Password})
		}
	}
	mux := m.muxReady()
	if mux == nil {
		return nil, net.ErrClosed
	}
	d := func(v time.Duration) *time.Duration { return &v }
	return ice.NewAgent(&ice.AgentConfig{
		Urls:                   urls,
		LocalUfrag:             cfg.LocalUfrag,
		LocalPwd:               cfg.LocalPwd,
		NetworkTypes:           []ice.NetworkType{ice.NetworkTypeUDP4, ice.NetworkTypeUDP6},
		CandidateTypes:         types,
		UDPMux:                 mux,
		UDPMuxSrflx:            mux,
		Net:                    m.net,
		LoggerFactory:          m.logs,
		MulticastDNSMode:       ice.MulticastDNSModeDisabled,
		CheckInterval:          d(checkInterval),
		HostAcceptanceMinWait:  d(0),
		SrflxAcceptanceMinWait: d(srflxMinWait),
		PrflxAcceptanceMinWait: d(prflxMinWait),
		RelayAcceptanceMinWait: d(relayMinWait),
		DisconnectedTimeout:    d(disconnectAfter),
		FailedTimeout:          d(failAfter),
		KeepaliveInterval:      d(keepaliveEvery),
		IncludeLoopback:        true,
	})
}

// HostCandidates returns the host candidates every agent of m gathers, one
// per address the socket listens on (each interface's when it is bound to
// all), encoded as agents trickle them. An offer or answer carries them, so
// that the peer checks host pairs at once rather than wait for the trickle.
func (m *ICE) HostCandidates() []string {
	mux := m.muxReady()
	if mux == nil {
		return nil
	}
	var out []string
	seen := map[string]bool{}
	for _, a := range mux.GetListenAddresses() {
		ua, ok := a.(*net.UDPAddr)
		if !ok {
			continue
		}
		c, err := ice.NewCandidateHost(&ice.CandidateHostConfig{Network: "udp", Address: ua.IP.String(), Port: ua.Port, Component: ice.ComponentRTP})
		if err != nil {
			continue
		}
		if s := c.Marshal(); !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// Close stops the mux. Agents must be closed first.
func (m *ICE) Close() error {
	m.muMux.Lock()
	defer m.muMux.Unlock()
	m.closed = true
	if mux := m.mux.Load(); mux != nil {
		return mux.Close()
	}
	return nil
}

func splitHostPort(a string) (string, int, error) {
	ua, err := net.ResolveUDPAddr("udp", a)
	if err != nil {
		return "", 0, fmt.Errorf("nat: bad server address %q: %w", a, err)
	}
	return ua.IP.String(), ua.Port, nil
}

// muxConn is the net.PacketConn the ICE mux reads STUN packets from: they
// arrive through the Socket's dispatcher, and replies go out of the Socket.
type muxConn struct {
	sock      *Socket
	checks    *checkBudget
	in        chan packet
	done      chan struct{}
	closeOnce sync.Once
}

func (c *muxConn) ReadFrom(p []byte) (int, net.Addr, error) {
	select {
	case pk := <-c.in:
		n := copy(p, pk.b)
		putBuf(pk.b)
		return n, pk.from, nil
	case <-c.done:
		return 0, nil, net.ErrClosed
	}
}

func (c *muxConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if isCheck(p) && !c.checks.allow(addr, p) {
		return len(p), nil // dropped, as the network might have
	}
	if err := c.sock.WriteTo(p, addr); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *muxConn) Close() error {
	c.closeOnce.Do(func() { close(c.done) })
	return nil
}

func (c *muxConn) LocalAddr() net.Addr              { return c.sock.LocalAddr() }
func (c *muxConn) SetDeadline(time.Time) error      { return nil }
func (c *muxConn) SetReadDeadline(time.Time) error  { return nil }
func (c *muxConn) SetWriteDeadline(time.Time) error { return nil }

// slogFactory routes pion's logs to slog: errors and warnings at debug level
// (pion warns about conditions that are normal here, such as a STUN server
// that did not answer), the rest dropped.
type slogFactory struct{ l *slog.Logger }

func (f slogFactory) NewLogger(scope string) logging.LeveledLogger {
	return slogLogger{f.l.With("pion", scope)}
}

type slogLogger struct{ l *slog.Logger }

func (l slogLogger) Trace(string)          {}
func (l slogLogger) Tracef(string, ...any) {}
func (l slogLogger) Debug(string)          {}
func (l slogLogger) Debugf(string, ...any) {}
func (l slogLogger) Info(string)           {}
func (l slogLogger) Infof(string, ...any)  {}
func (l slogLogger) Warn(m string)         { l.l.Debug(m) }
func (l slogLogger) Warnf(f string, a ...any) {
	l.l.Debug(fmt.Sprintf(f, a...))
}
func (l slogLogger) Error(m string) { l.l.Debug(m) }
func (l slogLogger) Errorf(f string, a ...any) {
	l.l.Debug(fmt.Sprintf(f, a...))
}
