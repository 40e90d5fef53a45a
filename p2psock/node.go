package p2psock

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/pion/transport/v2"

	"github.com/p2psock/p2psock/group"
	"github.com/p2psock/p2psock/internal/lan"
	"github.com/p2psock/p2psock/internal/streams"
	"github.com/p2psock/p2psock/internal/view"
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
	// Client makes the node a light client instead of a full member of the
	// network (the name is the usual one for a program that uses a server
	// of the network rather than serving it). It binds through an entry
	// point (Bootstrap, or one LocalDiscovery finds; it cannot start a
	// network, so Bind fails with ErrNoEntryPoint when none answers) and
	// keeps links to a few full nodes, its proxies: the ones closest to its
	// ID, where messages to that ID arrive. They hand it what is sent to it.
	// With LocalDiscovery it finds the nodes around without being found: it
	// is no entry point.
	// It never enters other nodes' routing tables, is never the node
	// closest to a key (SendToKey never reaches it), stores no DHT records,
	// relays nothing and forwards no one's messages; everything else works
	// from it: SendTo, SendToKey, calls, Connect and Accept (ICE still goes
	// direct where it can), Join, and package dht's Get and Add. Fit for
	// short-lived programs and small devices, whose coming and going the
	// network then does not feel. It does not receive Broadcast messages
	// (its own Broadcast goes out through a proxy, to every full node).
	// See overlay.Config.Client. Default false.
	Client bool
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
	// Difficulty is the identity work proof the network requires, in
	// leading zero bits of a hash of the ID (see overlay.Work): an identity
	// of difficulty D takes 2^D key generations to create, so that one
	// machine cannot cheaply make the many identities an attack needs. The
	// node's identity must carry it (NewNode fails with ErrDifficulty
	// otherwise; NewIdentityWork creates one), a fresh identity (Identity
	// nil) is created with it, and the node ignores peers whose IDs lack
	// it. Every node of a network must use the same value. 0 means
	// overlay.DefaultDifficulty (14 bits, about 0.6 s of one core to create
	// an identity); a negative value requires no work.
	Difficulty int
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
	// MemoryBudget is the most memory, in bytes, that what peers and
	// strangers send the node may make it keep: messages being reassembled,
	// the memory of delivered messages, received messages waiting for
	// RecvFrom, QUIC connections and their unread data, streams waiting for
	// Accept, and the records of a DHT on the node. Each of those tables
	// takes a share of it (see overlay.Budget), unless its own limit below
	// is set; whatever a table cannot take is dropped and counted by reason
	// in Info. 0 means 256 MiB.
	MemoryBudget int64
	// RecvQueue is the number of received messages held for RecvFrom; when
	// it is full, new messages are not acknowledged and their senders retry.
	// 0 means its share of MemoryBudget (128 messages of the default).
	RecvQueue int
	// SendTimeout bounds SendTo and SendToKey when their context has no
	// deadline; 0 means 20 s.
	SendTimeout time.Duration

	// ConnectTimeout bounds Connect when its context has no deadline; 0
	// means 20 s.
	ConnectTimeout time.Duration
	// AcceptQueue is the number of streams peers opened that wait for
	// Accept, in all. When it is full, a stream of a peer with fewer waiting
	// streams than the peer with the most takes the place of that peer's
	// newest; otherwise it is refused (RESET_STREAM and STOP_SENDING, code
	// 0) and counted in Info's Streams.QueueFull. 0 means its share of
	// MemoryBudget (256 of the default).
	AcceptQueue int
	// AcceptQueuePerPeer is the number of streams one peer may have waiting
	// for Accept; past it, its streams are refused (Streams.PeerQueueFull).
	// 0 means 64.
	AcceptQueuePerPeer int
	// UnacceptedTimeout is how long a stream may wait for Accept before it
	// is refused (Streams.Unaccepted). 0 means 30 s.
	UnacceptedTimeout time.Duration
	// MaxStreamsPerConn is the number of streams one peer may have open at
	// once on its connection to this node (QUIC's MaxIncomingStreams). 0
	// means 256, which MemoryBudget counts in each connection's share.
	MaxStreamsPerConn int
	// MaxConns is the number of QUIC connections peers may have open to
	// this node at once (counting those in their handshake). When it is
	// reached, a newcomer takes the place of the oldest connection of a peer
	// without history (that this node never connected to, whose streams the
	// program never accepted; peers outside its routing table first), or is
	// refused (Streams.ConnsFull). 0 means its share of MemoryBudget (64
	// of the default).
	MaxConns int
	// MaxConnsPerIP and MaxConnsPerSubnet bound the connections from one IP
	// address and from one subnet (IPv4 /24, IPv6 /48; a loopback or
	// private address is its own) among MaxConns. Connections on a path
	// this node's ICE found are not limited so. 0 means 16 and 32.
	MaxConnsPerIP, MaxConnsPerSubnet int
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
	// NoRelaying turns off relaying for others. By default a node that the
	// network sees at its own socket address (Info.Public) relays the
	// connections of peers that cannot reach each other directly, on its one
	// UDP socket, for peers linked to it that both asked for the circuit.
	NoRelaying bool
	// NoPortMapping turns off port mapping. By default a node that the
	// network sees behind a NAT asks the router in front of it for a
	// mapping of its UDP port (NAT-PMP, then UPnP-IGD), renews it, offers
	// the mapped address to peers as a candidate and removes the mapping on
	// Close (Info.NAT.PortMapping says what it got).
	NoPortMapping bool
	// RelayRate bounds the bytes per second the node relays for others, in
	// all (frames past it are dropped: Streams.CircuitBudget). 0 means
	// 64 MiB/s.
	RelayRate int
	// MaxRelayedConns bounds the connections the node relays for others at
	// once (joins past it are refused: Streams.CircuitsFull). 0 means 256.
	MaxRelayedConns int
	// ForceRelay makes every connection this node sets up use a relay, even
	// when a direct path exists (for testing, or to hide the node's address
	// from its peers).
	ForceRelay bool
	// DebugAddr, if set, makes the node serve, on this TCP "host:port", a
	// web page of the node and what it knows of the network (its routing
	// table as a picture of the ID ring, its connections and their paths,
	// its group trees, the records of its DHT, its counters as live charts)
	// and its Prometheus metrics at /metrics (see Collector). The page
	// updates itself over server-sent events. It has no authentication and
	// shows the node's contacts and their addresses, so give it a loopback
	// address: "127.0.0.1:0" picks a free port (Node.DebugAddr says which).
	// "" (the default) serves nothing. The name says what it is for: a
	// person or a Prometheus server looking inside one node, not peers.
	DebugAddr string
	// MaxCallHandlers is the number of call handlers (Service.Handle) the
	// node runs at once, over all its services; a call past it is refused
	// at once with ErrBusy and counted in Info's Services.CallsBusy. 0
	// means DefaultMaxCallHandlers (64).
	MaxCallHandlers int
	// DatagramsOverOverlay makes every datagram of a PacketConn travel as a
	// routed overlay message, acknowledged end to end (WriteTo returns once
	// the peer took it, or fails). By default (false) a datagram to a peer
	// this node has a QUIC connection with, small enough for one QUIC
	// datagram, goes as one: unacknowledged, and faster.
	DatagramsOverOverlay bool

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
	eng    *streams.Engine // Connect, Accept and their connections
	debug  *view.Server    // Config.DebugAddr's server; nil without one

	// life ends when Close begins: the context of call handlers.
	life   context.Context
	cancel context.CancelFunc

	svcMu     sync.Mutex
	services  map[wire.NameHash]*Service // the named services offered
	svcCtr    serviceCounters
	callSlots chan struct{} // a token per running call handler
	calls     sync.WaitGroup

	mu      sync.Mutex
	disc    *lan.Discovery // nil unless Config.LocalDiscovery, from Bind on
	bound   bool
	binding bool // a Bind is in progress
	closed  bool
}

// NewNode opens the node's socket. It sends nothing until Bind.
func NewNode(cfg Config) (*Node, error) {
	if cfg.Identity == nil {
		d := cfg.Difficulty
		if d == 0 {
			d = overlay.DefaultDifficulty
		}
		id, err := NewIdentityWork(context.Background(), d)
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
	if cfg.Client { // a client relays for no one
		cfg.NoRelaying, cfg.RelayAddr = true, ""
	}
	var relays []nat.TURNServer
	for _, r := range cfg.Relays {
		t, err := streams.ParseRelayURL(r)
		if err != nil {
			return nil, err
		}
		relays = append(relays, t)
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
	if cfg.MaxCallHandlers <= 0 {
		cfg.MaxCallHandlers = DefaultMaxCallHandlers
	}
	n := &Node{cfg: cfg, id: cfg.Identity, sock: sock, services: make(map[wire.NameHash]*Service),
		callSlots: make(chan struct{}, cfg.MaxCallHandlers)}
	n.life, n.cancel = context.WithCancel(context.Background())
	logger := cfg.Logger.With("node", cfg.Identity.ID().String()[:8])
	var err error
	n.ov, err = overlay.New(overlay.Config{
		Identity:     cfg.Identity.priv,
		Network:      cfg.Network,
		K:            cfg.BucketSize,
		Alpha:        cfg.Alpha,
		KeepAlive:    cfg.KeepAlive,
		RecvQueue:    cfg.RecvQueue,
		MemoryBudget: cfg.MemoryBudget,
		SendTimeout:  cfg.SendTimeout,
		Difficulty:   cfg.Difficulty,
		Client:       cfg.Client,
		Logger:       logger,
	}, sock)
	if err != nil {
		sock.Close()
		return nil, err
	}
	n.ov.HandleAsync(wire.ServiceNamed, n.onNamed)
	n.groups = group.New(n.ov, group.Config{Logger: cfg.Logger, OnBroadcast: n.onBroadcast})
	sock.Handle(wire.FirstType, wire.LastType, n.ov.HandlePacket)
	sock.Prefer(n.ov.Known)
	n.eng, err = streams.New(streams.Config{
		Identity:    cfg.Identity.priv,
		Net:         netOf(cfg.PacketConn),
		Logger:      cfg.Logger,
		STUNServers: cfg.STUNServers,
		Relays:      relays,
		RelayAddr:   cfg.RelayAddr,
		ForceRelay:  cfg.ForceRelay,
		IgnoreNAT:   cfg.ignoreNAT,

		NoRelaying:      cfg.NoRelaying,
		NoPortMapping:   cfg.NoPortMapping,
		RelayRate:       cfg.RelayRate,
		MaxRelayedConns: cfg.MaxRelayedConns,

		AcceptQueue:        cfg.AcceptQueue,
		AcceptQueuePerPeer: cfg.AcceptQueuePerPeer,
		UnacceptedTimeout:  cfg.UnacceptedTimeout,
		MaxStreamsPerConn:  cfg.MaxStreamsPerConn,
		MaxConns:           cfg.MaxConns,
		MaxConnsPerIP:      cfg.MaxConnsPerIP,
		MaxConnsPerSubnet:  cfg.MaxConnsPerSubnet,
		OnDatagram:         n.onDatagram,
	}, n.ov, sock)
	if err != nil {
		sock.Close()
		return nil, err
	}
	sock.Start()
	if err := n.eng.Start(); err != nil {
		n.eng.Close()
		sock.Close()
		return nil, err
	}
	n.ov.Start()
	if err := n.startDebug(); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// Bind joins the overlay through one of the entry points in Config.Bootstrap,
// or, if none answers and JoinOnly is not set, starts a new network.
//
// Bind returns once the node is reachable: the nodes closest to its ID have
// verified it and route to it, so that SendTo and Connect to its ID from any
// node of the network succeed at once, with no retry. That wait is bounded
// by ctx and by Config.SendTimeout.
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
		d, found := lan.Start(lan.Config{
			Network:     n.cfg.Network,
			ID:          n.ID(),
			Addr:        lan.LocalAddrPort(n.UDPAddr()),
			Dir:         n.cfg.discoveryDir,
			MachineOnly: n.cfg.MachineOnlyDiscovery,
			WaitForLAN:  len(entries) == 0,
			Hidden:      n.cfg.Client, // a light client is no entry point
			Announce:    func(b []byte) { _ = n.sock.WriteTo(b, lan.Group) },
			Meet:        n.ov.Meet,
			Logger:      n.cfg.Logger,
		})
		n.mu.Lock()
		closed := n.closed
		if !closed {
			n.disc = d
		}
		n.mu.Unlock()
		if closed {
			d.Close()
			return n.opErr("bind", net.ErrClosed)
		}
		if len(entries) == 0 {
			entries = found
		}
	}
	if err := n.ov.Join(ctx, entries, n.cfg.JoinOnly); err != nil {
		n.closeDiscovery()
		return err
	}
	n.mu.Lock()
	if n.disc != nil {
		n.disc.Run()
	}
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
	Relayed    int          // contacts reached through a relay node (PathRelayed)
	Punched    int          // contacts reached directly at their NAT's mapping (PathPunched); the rest are PathDirect
	Client     bool         // the node is a light client (Config.Client)
	Proxies    []ID         // a light client's proxies, nearest to its ID first
	Clients    int          // light clients attached to this full node
	Counters   Counters
	Streams    StreamCounters
	// Services counts what the node's named services turned away.
	Services ServiceCounters
	// NAT is what the node learned of its NAT: its mapping behaviour, and
	// whether it relays for others.
	NAT NATInfo
	// SocketDrops counts packets dropped at the socket because the node did
	// not take them in time: non-QUIC packets in bursts faster than its
	// reader (quic-go's transport queues 32, the node's dispatcher 512), and
	// QUIC packets quic-go dropped for a full queue of its own.
	SocketDrops uint64
}

// StreamCounters describe a node's QUIC connections, the ICE sessions that
// set them up, and what it turned away, by reason (docs/SECURITY.md,
// "Streams and connections").
type StreamCounters struct {
	Conns        int    // live QUIC connections, one per peer
	RelayedConns int    // of which through a relay (TURN, or a circuit on a public node): PathRelayed
	PunchedConns int    // of which direct to the peer's NAT's mapping: PathPunched
	Sessions     int    // ICE sessions in progress
	NoPath       uint64 // ICE sessions that found no path
	BadSignals   uint64 // malformed signalling or relay messages dropped
	STUNAnswered uint64 // plain STUN binding requests answered
	STUNDropped  uint64 // STUN packets dropped (malformed, or the ICE mux fell behind)
	Allocations  int    // live allocations on this node's TURN relay (Config.RelayAddr)
	Waiting      int    // streams waiting for Accept

	// StreamsRefused counts the streams peers opened that the node refused
	// (RESET_STREAM and STOP_SENDING, or NoService), for any of the five
	// reasons below.
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

	OffersEmpty     uint64 // connection offers refused: no usable candidate
	OffersPerPeer   uint64 // offers refused: their origin had too many ICE sessions in progress
	OffersPerSubnet uint64 // offers refused: their origin's subnet had too many sessions in progress
	OffersFull      uint64 // offers refused: every incoming session belonged to a peer with history or was making progress
	SessionsEvicted uint64 // incoming sessions without progress ended for a newer offer
	Candidates      uint64 // remote ICE candidates dropped past a session's bound
	ChecksThrottled uint64 // ICE checks not sent: their address had not answered and its allowance was spent

	// Circuits is the number of connections this node relays for others
	// (Config.NoRelaying), RelayedBytes the bytes it relayed for them. The
	// rest count what it dropped, by reason.
	Circuits         int
	RelayedBytes     uint64
	CircuitMalformed uint64 // circuit frames that did not parse
	CircuitUnknown   uint64 // circuit frames of no circuit here, or of one whose second end has not joined
	CircuitStranger  uint64 // circuit frames from an address that is no end of their circuit
	CircuitBudget    uint64 // circuit frames past Config.RelayRate
	CircuitQueue     uint64 // circuit frames for this node's own connections, dropped: its reader fell behind
	CircuitNoRelay   uint64 // circuit joins refused: the node does not relay (Config.NoRelaying, or not public)
	CircuitNoLink    uint64 // circuit joins refused: their sender had no direct link with the node
	CircuitBusy      uint64 // circuit joins refused: the circuit ID belongs to other nodes
	CircuitsFull     uint64 // circuit joins refused: Config.MaxRelayedConns circuits were up
	CircuitsEvicted  uint64 // circuits dropped: one of their ends joined a newer one past its bound (8)

	// Hard-NAT probing, on a relayed connection between a NAT that maps
	// per destination and one that does not (docs/PROTOCOL.md, §12.13):
	// the extra UDP ports this node opened (256 a round at most), and the
	// probes it sent to random ports of a peer's IP (2048 a round at most).
	HardPortsOpened   uint64
	HardProbesSprayed uint64
}

// Info returns a snapshot of the node's state and counters.
func (n *Node) Info() Info {
	oi := n.ov.Info()
	inf := Info{ID: n.ID(), Network: oi.Network, LocalAddr: n.UDPAddr(), Public: oi.Public,
		Contacts: oi.Contacts, Relayed: oi.Relayed, Punched: oi.Punched, Counters: oi.Counters,
		Client: oi.Client, Proxies: n.ov.Proxies(), Clients: oi.Clients,
		Streams: StreamCounters(n.eng.Counters()), Services: n.svcCtr.get()}
	if oi.Observed.IsValid() {
		inf.PublicAddr = net.UDPAddrFromAddrPort(oi.Observed)
	}
	inf.NAT = natInfo(oi, n.eng.Relaying(), inf.Streams.Circuits)
	inf.NAT.PortMapping = n.eng.PortMapping()
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
	if n.debug != nil {
		n.debug.Close()
	}
	n.cancel()
	n.groups.Close()
	n.closeDiscovery()
	n.eng.Close()
	err := n.ov.Close()
	if serr := n.sock.Close(); err == nil {
		err = serr
	}
	n.calls.Wait()
	return err
}

// closeDiscovery ends local discovery, if it runs.
func (n *Node) closeDiscovery() {
	n.mu.Lock()
	d := n.disc
	n.disc = nil
	n.mu.Unlock()
	if d != nil {
		d.Close()
	}
}

// state returns the error of a call that needs a bound node, if the node is
// not bound or closed: ErrNotBound or net.ErrClosed.
func (n *Node) state() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case n.closed:
		return net.ErrClosed
	case !n.bound:
		return ErrNotBound
	}
	return nil
}

// ready returns the error of the call op if the node is not bound or
// closed: a *net.OpError wrapping ErrNotBound or net.ErrClosed.
func (n *Node) ready(op string) error {
	if err := n.state(); err != nil {
		return n.opErr(op, err)
	}
	return nil
}

// opErr wraps err as the node's calls report errors.
func (n *Node) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "p2p", Err: err}
}
