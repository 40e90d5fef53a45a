package streams

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/transport/v2"
	"github.com/quic-go/quic-go"

	"github.com/p2psock/p2psock/internal/lifecycle"
	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/nat"
	"github.com/p2psock/p2psock/overlay"
)

// Config configures an Engine. Identity is required; the zero value of
// every other field is its default.
type Config struct {
	// Identity is the node's key: its public key is the node's ID, which the
	// TLS certificate of every connection proves.
	Identity ed25519.PrivateKey
	// Net is the network the engine's other sockets (TURN relay candidates,
	// its own relay) are opened on; nil means the host's.
	Net transport.Net
	// Logger receives debug logs; nil means none.
	Logger *slog.Logger
	// AcceptQueue is the number of streams peers opened that wait for
	// Accept, in all. When it is full, a stream of a peer with fewer
	// waiting streams than the peer with the most takes the place of that
	// peer's newest; otherwise it is refused (RESET_STREAM and
	// STOP_SENDING, code 0) and counted in Counters.QueueFull. 0 means its
	// share of the memory budget (overlay.Budget; 256 of the default).
	AcceptQueue int
	// AcceptQueuePerPeer is the number of streams one peer may have waiting
	// for Accept; past it, its streams are refused and counted in
	// Counters.PeerQueueFull. 0 means 64.
	AcceptQueuePerPeer int
	// UnacceptedTimeout is how long a stream may wait for Accept; then it
	// is refused and counted in Counters.Unaccepted. 0 means 30 s.
	UnacceptedTimeout time.Duration
	// MaxStreamsPerConn is the number of streams a peer may have open at
	// once on its connection (QUIC's MaxIncomingStreams; it cannot open
	// unidirectional streams). 0 means overlay.StreamsPerConn (256), which
	// the memory budget counts in each connection's share.
	MaxStreamsPerConn int
	// MaxConns is the number of QUIC connections peers may have open (or
	// in their handshake) to the node's socket at once. When it is reached,
	// a newcomer takes the place of the oldest connection of a peer without
	// history (that this node never dialled, whose streams the application
	// never accepted; peers outside the routing table first); if there is
	// none it is refused and counted in Counters.ConnsFull. 0 means its share
	// of the memory budget (overlay.Budget; 64 of the default).
	MaxConns int
	// MaxConnsPerIP and MaxConnsPerSubnet bound the connections from one
	// IP address and from one subnet (overlay.Subnet: IPv4 /24, IPv6 /48,
	// a loopback or private address its own) that count toward MaxConns;
	// connections from an address this node's ICE session selected are not
	// limited so. 0 means 16 and 32.
	MaxConnsPerIP, MaxConnsPerSubnet int
	// STUNServers lists "host:port" of STUN servers, besides the node's
	// contacts.
	STUNServers []string
	// Relays lists TURN relays to use besides those contacts offer
	// (ParseRelayURL parses their URLs).
	Relays []nat.TURNServer
	// RelayAddr, if set, makes the engine run a TURN relay for other nodes
	// on this UDP "host:port"; an empty host means the host of the node's
	// socket.
	RelayAddr string
	// NoRelaying turns off relaying for others: by default a node that the
	// network sees at its own socket address (Public) relays the QUIC
	// packets of peers that cannot reach each other directly, in circuits
	// on its one socket (docs/PROTOCOL.md, §12.12).
	NoRelaying bool
	// RelayRate bounds the bytes per second this node relays in circuits,
	// in all; frames past it are dropped and counted (Counters.CircuitBudget).
	// 0 means 64 MiB/s.
	RelayRate int
	// MaxRelayedConns bounds the circuits this node relays at once
	// (counting those only one end has joined); past it, joins are refused
	// and counted (Counters.CircuitsFull). 0 means 256.
	MaxRelayedConns int
	// NoPortMapping turns off port mapping: by default a node that the
	// network sees behind a NAT asks the router for a mapping of its port
	// (NAT-PMP, then UPnP-IGD), renews it, offers the mapped address as a
	// candidate and removes the mapping on Close.
	NoPortMapping bool
	// ForceRelay makes every connection the engine sets up use a relay.
	ForceRelay bool
	// OnDatagram receives the QUIC datagrams peers send (SendDatagram),
	// with the peer's proven ID, on one goroutine per connection; it must
	// not block. Default nil: the connections do not receive datagrams.
	OnDatagram func(from overlay.ID, data []byte)
	// IgnoreNAT makes the engine ignore what the overlay knows of the NAT
	// (its type, and that there is one) when it decides on relay
	// candidates (tests of the relay fallback).
	IgnoreNAT bool
}

// Engine is a node's connection engine. Its methods are safe for concurrent
// use.
type Engine struct {
	cfg    Config
	self   overlay.ID
	ov     *overlay.Overlay
	sock   *nat.Socket
	cert   tls.Certificate
	ice    *nat.ICE
	relay  *nat.Relay  // the node's own TURN relay; nil unless Config.RelayAddr
	offers relayOffers // the relays contacts offer
	circ   *circuits   // the circuits this node relays, and its own circuit ends
	// hardNAT, if set (tests), says whether this node's NAT maps per
	// destination instead of the overlay's view (mappingDependent).
	hardNAT func() bool
	// hardOpening and hardSpraying hold a place each while a round of
	// hard-NAT probing of that kind runs (hardnat.go): one at a time.
	hardOpening, hardSpraying chan struct{}
	hardOpened, hardSprayed   atomic.Uint64 // extra ports opened, probes sprayed
	// noPlainProbes and sprayPorts, if set (tests), turn off a circuit's
	// plain probes toward the address the relay sees (circuitpath.go) and
	// choose the ports a hard-NAT spray goes to, instead of the package's
	// sprayPorts.
	noPlainProbes bool
	sprayPorts    func(n int) []uint16
	// portMapper is set once the node asks for a port mapping (portmap.go);
	// read on the packet path, under Engine.mu or not.
	portMapper atomic.Pointer[nat.PortMapper]

	scope   *lifecycle.Scope
	closing chan struct{} // closed when Close begins
	queue   *acceptQueue  // streams waiting for Accept

	// started is set by Start, listening once the listener on the node's
	// socket is open (listen); lnMu is held while it opens.
	started, listening atomic.Bool
	lnMu               sync.Mutex

	mu       sync.Mutex
	closed   bool
	ln       *quic.Listener           // on the node's socket; set by listen
	peers    map[overlay.ID]*peerConn // the current connection to each peer
	dials    map[overlay.ID]*dial     // establishments in progress
	sessions map[[8]byte]*session     // ICE sessions in progress
	viaRelay map[overlay.ID]*session  // peers whose QUIC comes from their relay candidate: the session whose agent to keep
	// pathKinds is the kind of path ICE selected for the peers whose QUIC
	// connection the node's listener is about to adopt.
	pathKinds map[overlay.ID]overlay.PathKind
	// circuitEnds holds the circuit ends that wait for a peer's QUIC
	// connection (circuitAnswerPath), for the connection to know its circuit.
	circuitEnds map[overlay.ID]*circuitEnd
	// expected holds the remote ends of the pairs this node's ICE sessions
	// selected: no Retry and no per-IP quota for them (admission.go).
	expected      map[netip.AddrPort]int
	connsIn       int                          // connections admitted on the socket's listener, live or in their handshake
	connsByIP     map[netip.Addr]int           // of which from each IP
	connsBySubnet map[netip.Prefix]int         // and from each subnet
	known         map[overlay.ID]time.Time     // peers with history (remember), for the session pools
	redirected    map[netip.AddrPort]*peerConn // dialled addresses whose packets go elsewhere, and the connection that asked (pathlost.go)
	watching      bool                         // the looks at the direct connections run (pathlost.go)
	portMapTimer  *time.Timer                  // the looks for a NAT to map a port on (portmap.go)
	watchTimer    *time.Timer

	badSignals atomic.Uint64 // malformed signalling or relay messages
	noPath     atomic.Uint64 // ICE sessions that found no path
	retries    atomic.Uint64 // QUIC Retries sent to sources not yet validated
	drops      drops         // what the engine turned away, by reason
}

// defaults fills in the zero fields of c; the accept queue and the
// connections take their shares of the node's memory budget b.
func (c *Config) defaults(b overlay.Budget) {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	set := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	set(&c.AcceptQueue, b.AcceptQueue())
	set(&c.AcceptQueuePerPeer, 64)
	set(&c.MaxStreamsPerConn, overlay.StreamsPerConn)
	set(&c.MaxConns, b.Conns())
	set(&c.MaxConnsPerIP, 16)
	set(&c.MaxConnsPerSubnet, 32)
	set(&c.RelayRate, 64<<20)
	set(&c.MaxRelayedConns, 256)
	if c.UnacceptedTimeout <= 0 {
		c.UnacceptedTimeout = 30 * time.Second
	}
}

// New creates the engine of the node whose overlay is ov and whose socket
// is sock. Call it before sock.Start: it registers the engine's packet and
// service handlers (STUN, signalling, relay offers) and starts the node's
// TURN relay if Config.RelayAddr says so. Then call Start.
func New(cfg Config, ov *overlay.Overlay, sock *nat.Socket) (*Engine, error) {
	cfg.defaults(ov.Budget())
	e := &Engine{cfg: cfg, ov: ov, sock: sock, self: ov.ID(),
		scope: lifecycle.NewScope(), closing: make(chan struct{}),
		peers: make(map[overlay.ID]*peerConn), dials: make(map[overlay.ID]*dial),
		sessions: make(map[[8]byte]*session), viaRelay: make(map[overlay.ID]*session),
		pathKinds:   make(map[overlay.ID]overlay.PathKind),
		circuitEnds: make(map[overlay.ID]*circuitEnd),
		expected:    make(map[netip.AddrPort]int), connsByIP: make(map[netip.Addr]int),
		connsBySubnet: make(map[netip.Prefix]int), known: make(map[overlay.ID]time.Time),
		redirected:  make(map[netip.AddrPort]*peerConn),
		hardOpening: make(chan struct{}, 1), hardSpraying: make(chan struct{}, 1)}
	e.queue = newAcceptQueue(cfg.AcceptQueue, cfg.AcceptQueuePerPeer, cfg.UnacceptedTimeout, e.refuseStream)
	var err error
	if e.cert, err = certificate(cfg.Identity); err != nil {
		return nil, err
	}
	e.offers = relayOffers{ask: e.askRelays, spawn: e.scope.Go}
	e.circ = newCircuits(cfg.RelayRate)
	sock.Handle(wire.TypeCircuit, wire.TypeCircuit, e.handleCircuitFrame)
	sock.HandleInline(wire.TypeCircuit, e.circuitInline)
	ov.Handle(wire.ServiceCircuit, e.handleCircuit)
	e.ice = nat.NewICE(sock, cfg.Net, cfg.Logger)
	ov.Handle(wire.ServiceSignal, e.handleSignal)
	ov.Handle(wire.ServiceRelay, e.handleRelay)
	ov.OnPathLost(e.onPathLost)
	if cfg.RelayAddr != "" {
		if e.relay, err = e.startRelay(); err != nil {
			e.ice.Close()
			return nil, err
		}
	}
	return e, nil
}

// Start readies the engine's QUIC listener on the node's socket; call it
// once the socket has started. The listener (quic-go's server: a queue of
// 1024 packets and three goroutines) opens when it is first needed: when a
// peer's offer arrives, or when the first QUIC handshake packet does (the
// socket calls the engine before quic-go handles that packet, so it is not
// lost). A node nobody connects to never opens it. If Start fails, Close the
// engine.
func (e *Engine) Start() error {
	// The socket's transport takes these when its listener opens: a Retry
	// for every source ICE did not validate, and the connection quotas.
	tr := e.sock.Transport()
	tr.VerifySourceAddress = e.needsRetry
	tr.ConnContext = e.connContext
	e.started.Store(true)
	if !e.sock.OnLongHeader(e.listenHook) {
		// The socket cannot see quic-go's packets: open it now.
		if err := e.listen(); err != nil {
			return err
		}
	}
	if !e.cfg.NoPortMapping && !e.cfg.ForceRelay {
		e.portMap()
	}
	return nil
}

// listenHook is called on the socket's read path for each QUIC handshake
// packet: the first opens the listener.
func (e *Engine) listenHook() {
	if e.listening.Load() {
		return
	}
	if err := e.listen(); err != nil {
		e.cfg.Logger.Debug("QUIC listener", "err", err)
	}
}

// listen opens the QUIC listener on the node's socket unless it is open (or
// Start has not been called: the first handshake packet opens it then).
func (e *Engine) listen() error {
	if e.listening.Load() || !e.started.Load() {
		return nil
	}
	e.lnMu.Lock()
	defer e.lnMu.Unlock()
	if e.listening.Load() {
		return nil
	}
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return net.ErrClosed
	}
	ln, err := e.sock.Transport().Listen(serverTLS(e.cert), e.quicConfig())
	if err != nil {
		return fmt.Errorf("p2psock: QUIC listener: %w", err)
	}
	e.mu.Lock()
	if e.closed { // Close began meanwhile and did not see it
		e.mu.Unlock()
		ln.Close()
		return net.ErrClosed
	}
	e.ln = ln
	e.mu.Unlock()
	e.listening.Store(true)
	e.scope.Go(func(ctx context.Context) { e.acceptConns(ctx, ln, nil, overlay.ID{}) })
	return nil
}

// Counters describe the engine's connections, the ICE sessions that set
// them up, and what it turned away, by reason.
type Counters struct {
	Conns        int    // live QUIC connections, one per peer
	RelayedConns int    // of which through a relay (TURN, or a circuit that found no direct path)
	PunchedConns int    // of which direct to the peer's NAT's mapping (Path.Kind)
	Sessions     int    // ICE sessions in progress
	NoPath       uint64 // ICE sessions that found no path
	BadSignals   uint64 // malformed signalling or relay messages dropped
	STUNAnswered uint64 // plain STUN binding requests answered
	STUNDropped  uint64 // STUN packets dropped (malformed, or the ICE mux fell behind)
	Allocations  int    // live allocations on the node's TURN relay (Config.RelayAddr)
	Waiting      int    // streams waiting for Accept

	// StreamsRefused counts the streams peers opened that were refused, for
	// any of the five reasons below.
	StreamsRefused uint64
	QueueFull      uint64 // the accept queue was full (Config.AcceptQueue)
	PeerQueueFull  uint64 // the peer had Config.AcceptQueuePerPeer streams waiting
	Unaccepted     uint64 // reset after Config.UnacceptedTimeout without an Accept
	BadStreams     uint64 // the first byte was not the stream version, or did not come in time
	NoService      uint64 // to a named service that does not listen (answered NoService)

	Retries        uint64 // QUIC Retries sent to sources no ICE session of the node validated
	ConnsPerIP     uint64 // connections refused: their IP had Config.MaxConnsPerIP
	ConnsPerSubnet uint64 // connections refused: their subnet had Config.MaxConnsPerSubnet
	ConnsFull      uint64 // connections refused: Config.MaxConns, and no peer without history to evict
	ConnsEvicted   uint64 // connections of peers without history closed for a newcomer
	ConnsReplaced  uint64 // connections closed because their peer opened a newer one

	OffersEmpty     uint64 // offers refused: no usable candidate
	OffersPerPeer   uint64 // offers refused: their origin had too many sessions in progress
	OffersPerSubnet uint64 // offers refused: their origin's subnet had too many sessions in progress
	OffersFull      uint64 // offers refused: the incoming sessions were all taken by peers with history or making progress
	SessionsEvicted uint64 // incoming sessions without progress ended for a newer offer
	Candidates      uint64 // remote candidates dropped past a session's bound
	ChecksThrottled uint64 // ICE checks not sent: their address never answered and its budget was spent

	// Circuits is the number of circuits this node relays for others
	// (both ends joined), RelayedBytes the bytes of Circuit frames it
	// forwarded. The rest count what it dropped, by reason.
	Circuits         int
	RelayedBytes     uint64
	CircuitMalformed uint64 // Circuit frames that did not parse
	CircuitUnknown   uint64 // Circuit frames of no circuit here, or of one whose second end has not joined
	CircuitStranger  uint64 // Circuit frames from an address that is no end of their circuit
	CircuitBudget    uint64 // Circuit frames past Config.RelayRate
	CircuitQueue     uint64 // Circuit frames for this node's own end, dropped: its reader fell behind
	CircuitNoRelay   uint64 // joins refused: this node does not relay (Config.NoRelaying, or not public)
	CircuitNoLink    uint64 // joins refused: their sender had no direct link with this node
	CircuitBusy      uint64 // joins refused: the circuit ID belongs to other nodes
	CircuitsFull     uint64 // joins refused: Config.MaxRelayedConns circuits were up
	CircuitsEvicted  uint64 // circuits dropped: one of their ends joined a newer one past its bound (8)

	// Hard-NAT probing (a circuit between a NAT that maps per destination
	// and one that does not): the extra ports this node opened, and the
	// probes it sent to random ports of a peer's IP.
	HardPortsOpened   uint64
	HardProbesSprayed uint64
}

// Counters returns a snapshot of the engine's counters.
func (e *Engine) Counters() Counters {
	var c Counters
	e.mu.Lock()
	for _, pc := range e.peers {
		c.Conns++
		switch pc.kind() {
		case overlay.PathRelayed:
			c.RelayedConns++
		case overlay.PathPunched:
			c.PunchedConns++
		}
	}
	c.Sessions = len(e.sessions)
	e.mu.Unlock()
	c.NoPath, c.BadSignals = e.noPath.Load(), e.badSignals.Load()
	c.STUNAnswered, c.STUNDropped = e.ice.STUNStats()
	if e.relay != nil {
		c.Allocations = e.relay.Allocations()
	}
	c.Waiting = e.queue.len()
	d := &e.drops
	c.QueueFull, c.PeerQueueFull = d.get(dropQueueFull), d.get(dropPeerQueueFull)
	c.Unaccepted, c.BadStreams = d.get(dropUnaccepted), d.get(dropBadVersion)
	c.NoService = d.get(dropNoService)
	c.StreamsRefused = c.QueueFull + c.PeerQueueFull + c.Unaccepted + c.BadStreams + c.NoService
	c.Retries = e.retries.Load()
	c.ConnsPerIP, c.ConnsPerSubnet = d.get(dropConnIP), d.get(dropConnSubnet)
	c.ConnsFull, c.ConnsEvicted, c.ConnsReplaced = d.get(dropConnFull), d.get(dropConnEvicted), d.get(dropConnReplaced)
	c.OffersEmpty, c.OffersPerPeer = d.get(dropOfferEmpty), d.get(dropOfferPeer)
	c.OffersPerSubnet, c.OffersFull = d.get(dropOfferSubnet), d.get(dropOfferFull)
	c.SessionsEvicted, c.Candidates = d.get(dropSessionEvicted), d.get(dropCandidates)
	c.ChecksThrottled = e.ice.ChecksThrottled()
	c.Circuits, c.RelayedBytes = e.circ.active(), e.circ.relayedBytes.Load()
	c.CircuitMalformed, c.CircuitUnknown = d.get(dropCircuitMalformed), d.get(dropCircuitUnknown)
	c.CircuitStranger, c.CircuitBudget = d.get(dropCircuitStranger), d.get(dropCircuitBudget)
	c.CircuitQueue, c.CircuitNoRelay = d.get(dropCircuitQueue), d.get(dropCircuitNoRelay)
	c.CircuitNoLink, c.CircuitBusy = d.get(dropCircuitNoLink), d.get(dropCircuitBusy)
	c.CircuitsFull, c.CircuitsEvicted = d.get(dropCircuitFull), d.get(dropCircuitEvicted)
	c.HardPortsOpened, c.HardProbesSprayed = e.hardOpened.Load(), e.hardSprayed.Load()
	return c
}

// isClosing reports whether Close has begun.
func (e *Engine) isClosing() bool {
	select {
	case <-e.closing:
		return true
	default:
		return false
	}
}

// shortID is the start of id, for logs.
func shortID(id overlay.ID) string { return id.String()[:8] }
