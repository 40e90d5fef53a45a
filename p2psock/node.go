package p2psock

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/pion/transport/v2"

	"github.com/p2psock/p2psock/group"
	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/nat"
	"github.com/p2psock/p2psock/overlay"
)

// DefaultNetwork is the network name used when Config.Network is empty.
const DefaultNetwork = "p2psock"

// Config configures a Node. The zero value works: a fresh identity, a socket
// on every interface and a free port, a new network of its own.
type Config struct {
	// Identity is the node's key pair; nil means a fresh one.
	Identity *Identity
	// ListenAddr is the UDP "host:port" to bind; "" means all interfaces, any
	// free port.
	ListenAddr string
	// PacketConn, if set, is used as the node's socket instead of binding
	// ListenAddr (for example a socket on a simulated network). The node owns
	// it: Close closes it. If it has a method Net() transport.Net
	// (github.com/pion/transport/v2), the node's other sockets (TURN relay
	// candidates, its own relay) are opened on that network too.
	PacketConn net.PacketConn
	// Network is the network's name; nodes of another network are ignored. ""
	// is DefaultNetwork.
	Network string
	// Bootstrap lists entry points, "host:port" of nodes already in the
	// network. Bind tries them in random order.
	Bootstrap []string
	// JoinOnly makes Bind fail with ErrNoEntryPoint when no entry point
	// answers; otherwise the node starts a new network others can join.
	JoinOnly bool
	// LocalDiscovery makes the node find the nodes of its network on this
	// machine (through a registry in the temporary directory) and on its LAN
	// (through UDP multicast announcements to 239.255.80.80:7447), join
	// through them when Bootstrap is empty, and keep meeting the ones that
	// start later, so that nodes started with no entry point find each
	// other. Off by default.
	LocalDiscovery bool
	// MachineOnlyDiscovery keeps LocalDiscovery to this machine: the node
	// neither sends nor listens for LAN announcements.
	MachineOnlyDiscovery bool
	// Logger receives the node's logs; debug level traces routing decisions.
	// nil means no logging.
	Logger *slog.Logger

	// BucketSize is k, the number of contacts per routing-table bucket;
	// 0 means 20.
	BucketSize int
	// Alpha is the number of parallel queries in a lookup; 0 means 3.
	Alpha int
	// KeepAlive is how long a link through a NAT may stay idle before the
	// node pings it; 0 means 15 s.
	KeepAlive time.Duration
	// RecvQueue is the number of received messages held for RecvFrom; when
	// it is full, new messages are not acknowledged and their senders retry.
	// 0 means 128.
	RecvQueue int
	// SendTimeout bounds SendTo and SendToKey when their context has no
	// deadline; 0 means 20 s.
	SendTimeout time.Duration

	// ConnectTimeout bounds Connect when its context has no deadline; 0
	// means 20 s.
	ConnectTimeout time.Duration
	// AcceptQueue is the number of streams peers opened that wait for
	// Accept; while it is full, further streams wait. 0 means 64.
	AcceptQueue int
	// STUNServers lists "host:port" of STUN servers ICE asks for this node's
	// server-reflexive address, besides the node's public contacts (every
	// p2psock node answers STUN on its own port). nil means only contacts.
	STUNServers []string
	// Relays lists TURN relays for connections that find no direct path,
	// as "turn://user:password@host:port" (user and password
	// percent-encoded, as in any URL). Public nodes that run a relay
	// (RelayAddr) are used as well, without configuration.
	Relays []string
	// RelayAddr, if set, makes this node a TURN relay for other nodes of
	// the network, listening on this UDP "host:port" (a port of its own: TURN
	// cannot share the node's socket with QUIC). An empty host means the
	// host of ListenAddr. Only a node with a public address should relay.
	RelayAddr string
	// ForceRelay makes every connection this node sets up use a relay, even
	// when a direct path exists (for testing, or to hide the node's address
	// from its peers).
	ForceRelay bool
	// ignoreNAT makes the node ignore what it knows of its NAT (its type, and
	// that there is one) when it decides on relay candidates (tests of the
	// relay fallback).
	ignoreNAT bool
	// discoveryDir is the local discovery registry's directory; "" is the
	// default (tests use their own).
	discoveryDir string
}

// netOf returns the network pc lives on, if it says; nil means the host's.
func netOf(pc net.PacketConn) transport.Net {
	if nc, ok := pc.(interface{ Net() transport.Net }); ok {
		return nc.Net()
	}
	return nil
}

// Node is a peer in a p2psock network: an identity bound into the overlay
// through one UDP socket. Its methods are safe for concurrent use.
type Node struct {
	cfg    Config
	id     *Identity
	sock   *nat.Socket
	ov     *overlay.Overlay
	groups *group.Groups

	cert   tls.Certificate
	ice    *nat.ICE
	relay  *nat.Relay       // nil unless Config.RelayAddr
	relays []nat.TURNServer // Config.Relays, parsed
	net    transport.Net    // where ICE and the relay open sockets; nil: the host's
	disc   *discovery       // nil unless Config.LocalDiscovery
	st     streams

	mu      sync.Mutex
	bound   bool
	binding bool // a Bind is in progress
	closed  bool
}

// NewNode opens the node's socket. It sends nothing until Bind.
func NewNode(cfg Config) (*Node, error) {
	if cfg.Identity == nil {
		id, err := NewIdentity()
		if err != nil {
			return nil, err
		}
		cfg.Identity = id
	}
	if cfg.Network == "" {
		cfg.Network = DefaultNetwork
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 20 * time.Second
	}
	if cfg.AcceptQueue <= 0 {
		cfg.AcceptQueue = 64
	}
	var relays []nat.TURNServer
	for _, r := range cfg.Relays {
		t, err := parseRelayURL(r)
		if err != nil {
			return nil, err
		}
		relays = append(relays, t)
	}
	cert, err := certificate(cfg.Identity)
	if err != nil {
		return nil, err
	}
	var sock *nat.Socket
	if cfg.PacketConn != nil {
		sock = nat.NewSocket(cfg.PacketConn)
	} else {
		var err error
		if sock, err = nat.Listen(cfg.ListenAddr); err != nil {
			return nil, fmt.Errorf("p2psock: opening socket: %w", err)
		}
	}
	n := &Node{cfg: cfg, id: cfg.Identity, sock: sock, cert: cert, relays: relays, net: netOf(cfg.PacketConn)}
	n.ov, err = overlay.New(overlay.Config{
		Identity:    cfg.Identity.priv,
		Network:     cfg.Network,
		K:           cfg.BucketSize,
		Alpha:       cfg.Alpha,
		KeepAlive:   cfg.KeepAlive,
		RecvQueue:   cfg.RecvQueue,
		SendTimeout: cfg.SendTimeout,
		Logger:      cfg.Logger.With("node", cfg.Identity.ID().String()[:8]),
	}, sock)
	if err != nil {
		sock.Close()
		return nil, err
	}
	n.groups = group.New(n.ov, group.Config{Logger: cfg.Logger})
	sock.Handle(wire.FirstType, wire.LastType, n.ov.HandlePacket)
	n.ice = nat.NewICE(sock, n.net, cfg.Logger)
	n.ov.Handle(wire.ServiceSignal, n.handleSignal)
	n.ov.Handle(wire.ServiceRelay, n.handleRelay)
	if cfg.RelayAddr != "" {
		if n.relay, err = n.startRelay(); err != nil {
			n.ice.Close()
			sock.Close()
			return nil, err
		}
	}
	sock.Start()
	if err := n.startStreams(); err != nil {
		n.closeStreams()
		sock.Close()
		return nil, err
	}
	n.ov.Start()
	return n, nil
}

// Bind joins the overlay through one of the entry points in Config.Bootstrap,
// or, if none answers and JoinOnly is not set, starts a new network.
func (n *Node) Bind(ctx context.Context) error {
	n.mu.Lock()
	switch {
	case n.closed:
		n.mu.Unlock()
		return n.opErr("bind", net.ErrClosed)
	case n.bound || n.binding:
		n.mu.Unlock()
		return ErrAlreadyBound
	}
	n.binding = true
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		n.binding = false
		n.mu.Unlock()
	}()
	entries := n.cfg.Bootstrap
	if n.cfg.LocalDiscovery {
		// Nodes found locally are entry points only when none is given;
		// otherwise they are met in the background (a registry shared with
		// other network namespaces can list addresses unreachable here).
		if found := n.startDiscovery(); len(entries) == 0 {
			entries = found
		}
	}
	if err := n.ov.Join(ctx, entries, n.cfg.JoinOnly); err != nil {
		n.closeDiscovery()
		return err
	}
	n.mu.Lock()
	d := n.disc
	n.mu.Unlock()
	if d != nil {
		n.runDiscovery(d)
	}
	n.mu.Lock()
	n.bound = true
	n.mu.Unlock()
	return nil
}

// ID returns the node's ID.
func (n *Node) ID() ID { return n.id.ID() }

// Identity returns the node's identity.
func (n *Node) Identity() *Identity { return n.id }

// UDPAddr returns the address of the node's socket. Another node can use it
// in Config.Bootstrap (with a routable host in place of an unspecified one).
func (n *Node) UDPAddr() *net.UDPAddr {
	if ua, ok := n.sock.LocalAddr().(*net.UDPAddr); ok {
		return ua
	}
	return nil
}

// SendTo sends data to the node with ID to, and returns once that node has
// accepted it. It fails with ErrUnreachable if no such node is in the network
// or none acknowledged before ctx ended (or Config.SendTimeout when ctx has
// no deadline), and with ErrMessageTooLarge above MaxMessageSize bytes. A
// message is delivered at most once.
func (n *Node) SendTo(ctx context.Context, data []byte, to ID) error {
	if err := n.ready("send"); err != nil {
		return err
	}
	return n.ov.Send(ctx, data, to.Key(), false)
}

// SendToKey sends data to the live node whose ID is closest to key (XOR
// distance), possibly this node, and returns once that node has accepted it.
// Errors are as for SendTo.
func (n *Node) SendToKey(ctx context.Context, data []byte, key Key) error {
	if err := n.ready("send"); err != nil {
		return err
	}
	return n.ov.Send(ctx, data, key, true)
}

// Message is a message received by RecvFrom.
type Message struct {
	Data      []byte
	From      ID   // the origin; its signature was verified
	To        Key  // the key it was routed to: this node's ID as a Key when addressed to the node
	ByKey     bool // true when it was sent with SendToKey
	Hops      int  // overlay hops it took (0 when sent to this node by itself)
	Broadcast bool // true when it was sent with Broadcast to every node
}

// RecvFrom returns the next message delivered to this node: sent to its ID,
// or to a key it is the closest node to.
func (n *Node) RecvFrom(ctx context.Context) (Message, error) {
	m, err := n.ov.Recv(ctx)
	if err != nil {
		return Message{}, err
	}
	return Message{Data: m.Data, From: m.From, To: m.To, ByKey: m.ByKey, Hops: m.Hops, Broadcast: m.Broadcast}, nil
}

// Lookup returns the IDs of up to BucketSize live nodes closest to key,
// nearest first: the key's replica set.
func (n *Node) Lookup(ctx context.Context, key Key) ([]ID, error) {
	if err := n.ready("lookup"); err != nil {
		return nil, err
	}
	return n.ov.Lookup(ctx, key)
}

// Overlay returns the node's overlay, for packages that build services on
// it (package dht, say): Overlay.Handle and Overlay.SendService carry their
// messages, which never reach RecvFrom.
func (n *Node) Overlay() *overlay.Overlay { return n.ov }

// Groups returns the node's group service, for tools that inspect group
// trees; programs use Join, Group and Broadcast.
func (n *Node) Groups() *group.Groups { return n.groups }

// Counters are a node's traffic counters; see Info.
type Counters = overlay.Counters

// Info describes a node: what a peer-info call reports.
type Info struct {
	ID         ID
	Network    string
	LocalAddr  *net.UDPAddr // the bound socket
	PublicAddr *net.UDPAddr // the address peers see this node at; nil until one answered
	Public     bool         // PublicAddr is the socket's own address: no NAT in between
	Contacts   int          // routing table size
	Relayed    int          // contacts reached through a relay node
	Counters   Counters
	Streams    StreamCounters
	// SocketDrops counts packets dropped at the socket because the node did
	// not take them in time: non-QUIC packets in bursts faster than its
	// reader (quic-go's transport queues 32, the node's dispatcher 512), and
	// QUIC packets quic-go dropped for a full queue of its own.
	SocketDrops uint64
}

// StreamCounters describe a node's QUIC connections and the ICE sessions
// that set them up.
type StreamCounters struct {
	Conns        int    // live QUIC connections, one per peer
	RelayedConns int    // of which through a TURN relay
	Sessions     int    // ICE sessions in progress
	NoPath       uint64 // ICE sessions that found no path
	BadSignals   uint64 // malformed signalling or relay messages dropped
	STUNAnswered uint64 // plain STUN binding requests answered
	STUNDropped  uint64 // STUN packets dropped (malformed, or the ICE mux fell behind)
	Allocations  int    // live allocations on this node's TURN relay (Config.RelayAddr)
}

// Info returns a snapshot of the node's state and counters.
func (n *Node) Info() Info {
	oi := n.ov.Info()
	inf := Info{ID: n.ID(), Network: oi.Network, LocalAddr: n.UDPAddr(), Public: oi.Public,
		Contacts: oi.Contacts, Relayed: oi.Relayed, Counters: oi.Counters, Streams: n.streamCounters()}
	if oi.Observed.IsValid() {
		inf.PublicAddr = net.UDPAddrFromAddrPort(oi.Observed)
	}
	_, _, _, inf.SocketDrops = n.sock.Stats()
	return inf
}

// Contacts returns the IDs in the node's routing table.
func (n *Node) Contacts() []ID {
	return n.ov.Contacts()
}

// Close leaves the network (contacts are told, so they drop this node at
// once), closes every stream and connection, closes the socket and waits
// for the node's goroutines. Like closing a TCP socket, it first lingers
// (until its connections have sent nothing for two QUIC probe timeouts, at
// most a second) if a stream closed its sending side before, so that the end
// of what it wrote reaches the peer. Later calls
// fail with net.ErrClosed. Close is idempotent.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	n.mu.Unlock()
	n.groups.Close()
	n.closeDiscovery()
	n.closeStreams()
	err := n.ov.Close()
	if serr := n.sock.Close(); err == nil {
		err = serr
	}
	return err
}

func (n *Node) ready(op string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case n.closed:
		return n.opErr(op, net.ErrClosed)
	case !n.bound:
		return ErrNotBound
	}
	return nil
}

func (n *Node) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "p2p", Err: err}
}
