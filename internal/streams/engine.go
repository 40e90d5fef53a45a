package streams

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

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
	// Accept; while it is full, further streams wait. 0 means 64.
	AcceptQueue int
	// MaxAdmitting bounds the streams peers opened that are not yet in the
	// accept queue: waiting for their version byte, or for room in the
	// queue. A stream past the bound is refused (RESET_STREAM and
	// STOP_SENDING, code 0) and counted in Counters.StreamsRefused. 0 means
	// 1024.
	MaxAdmitting int
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
	// ForceRelay makes every connection the engine sets up use a relay.
	ForceRelay bool
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

	scope    *lifecycle.Scope
	admit    *lifecycle.Budget // admitStream goroutines
	closing  chan struct{}     // closed when Close begins
	accepted chan *Stream

	mu       sync.Mutex
	closed   bool
	ln       *quic.Listener           // on the node's socket; set by Start
	peers    map[overlay.ID]*peerConn // the current connection to each peer
	dials    map[overlay.ID]*dial     // establishments in progress
	sessions map[[8]byte]*session     // ICE sessions in progress
	viaRelay map[overlay.ID]*session  // peers whose QUIC comes from their relay candidate: the session whose agent to keep

	badSignals atomic.Uint64 // malformed signalling or relay messages
	noPath     atomic.Uint64 // ICE sessions that found no path
}

// New creates the engine of the node whose overlay is ov and whose socket
// is sock. Call it before sock.Start: it registers the engine's packet and
// service handlers (STUN, signalling, relay offers) and starts the node's
// TURN relay if Config.RelayAddr says so. Then call Start.
func New(cfg Config, ov *overlay.Overlay, sock *nat.Socket) (*Engine, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.AcceptQueue <= 0 {
		cfg.AcceptQueue = 64
	}
	if cfg.MaxAdmitting <= 0 {
		cfg.MaxAdmitting = 1024
	}
	e := &Engine{cfg: cfg, ov: ov, sock: sock, self: ov.ID(),
		scope: lifecycle.NewScope(), admit: lifecycle.NewBudget(cfg.MaxAdmitting),
		closing: make(chan struct{}), accepted: make(chan *Stream, cfg.AcceptQueue),
		peers: make(map[overlay.ID]*peerConn), dials: make(map[overlay.ID]*dial),
		sessions: make(map[[8]byte]*session), viaRelay: make(map[overlay.ID]*session)}
	var err error
	if e.cert, err = certificate(cfg.Identity); err != nil {
		return nil, err
	}
	e.offers = relayOffers{ask: e.askRelays, spawn: e.scope.Go}
	e.ice = nat.NewICE(sock, cfg.Net, cfg.Logger)
	ov.Handle(wire.ServiceSignal, e.handleSignal)
	ov.Handle(wire.ServiceRelay, e.handleRelay)
	if cfg.RelayAddr != "" {
		if e.relay, err = e.startRelay(); err != nil {
			e.ice.Close()
			return nil, err
		}
	}
	return e, nil
}

// Start opens the engine's QUIC listener on the node's socket; call it once
// the socket has started. If it fails, Close the engine.
func (e *Engine) Start() error {
	ln, err := e.sock.Transport().Listen(serverTLS(e.cert), QUICConfig())
	if err != nil {
		return fmt.Errorf("p2psock: QUIC listener: %w", err)
	}
	e.mu.Lock()
	e.ln = ln
	e.mu.Unlock()
	e.scope.Go(func(ctx context.Context) { e.acceptConns(ctx, ln, nil, overlay.ID{}) })
	return nil
}

// Counters describe the engine's connections, the ICE sessions that set
// them up and the streams it refused.
type Counters struct {
	Conns          int    // live QUIC connections, one per peer
	RelayedConns   int    // of which through a TURN relay
	Sessions       int    // ICE sessions in progress
	NoPath         uint64 // ICE sessions that found no path
	BadSignals     uint64 // malformed signalling or relay messages dropped
	STUNAnswered   uint64 // plain STUN binding requests answered
	STUNDropped    uint64 // STUN packets dropped (malformed, or the ICE mux fell behind)
	Allocations    int    // live allocations on the node's TURN relay (Config.RelayAddr)
	StreamsRefused uint64 // streams peers opened that were refused: Config.MaxAdmitting were waiting
}

// Counters returns a snapshot of the engine's counters.
func (e *Engine) Counters() Counters {
	var c Counters
	e.mu.Lock()
	for _, pc := range e.peers {
		c.Conns++
		if pc.relayed {
			c.RelayedConns++
		}
	}
	c.Sessions = len(e.sessions)
	e.mu.Unlock()
	c.NoPath, c.BadSignals = e.noPath.Load(), e.badSignals.Load()
	c.STUNAnswered, c.STUNDropped = e.ice.STUNStats()
	if e.relay != nil {
		c.Allocations = e.relay.Allocations()
	}
	c.StreamsRefused = e.admit.Dropped()
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
