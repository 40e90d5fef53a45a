package overlay

import (
	"cmp"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2psock/p2psock/internal/lifecycle"
	"github.com/p2psock/p2psock/internal/wire"
)

// Config configures an Overlay. Zero fields take the defaults given.
type Config struct {
	Identity ed25519.PrivateKey // required
	Network  string             // network name; "" is "p2psock"

	K     int // contacts per k-bucket, and the size of a replica set; default 20
	Alpha int // parallel queries in a lookup; default 3

	// KeepAlive is how long a link with a node behind a NAT (this one or the
	// contact) may be idle before it is pinged; default 15s, under the 30 s
	// UDP mapping timeout common in NATs. A contact that stays silent for a
	// grace beyond it (a third of it, at most 5 s and at least 2 s and four
	// retransmission timeouts) is dead and dropped.
	KeepAlive time.Duration
	// Liveness is the same for links between two publicly reachable nodes;
	// default 60s.
	Liveness time.Duration
	// Refresh is the interval between routing-table refreshes; default 5m.
	Refresh time.Duration
	// ReplayWindow is how far a message's timestamp may be from this node's
	// clock; default 2m.
	ReplayWindow time.Duration
	// SendTimeout bounds a Send whose context has no deadline; default 20s.
	SendTimeout time.Duration
	// MemoryBudget is the most memory, in bytes, that what other nodes
	// and strangers send this node may make it keep; the tables below whose
	// field is 0 take their share of it (see Budget). Default 256 MiB
	// (DefaultMemoryBudget).
	MemoryBudget int64
	// RecvQueue is the number of received messages held for Recv; default
	// its share of MemoryBudget (128 messages of the default).
	RecvQueue int
	// Workers bounds the goroutines a node starts for the packets it
	// receives: at most Workers forward routed fragments to their next hops
	// at once, and at most Workers route acknowledgements and refusals back
	// to the origins of the messages it received. A fragment that finds
	// every forwarding worker busy is not acknowledged to the hop that sent
	// it (which tries again, then routes around this node) and is counted in
	// Counters.DroppedBusy; an acknowledgement that finds every worker busy
	// is not sent (the origin sends its message again) and is counted in
	// Counters.DroppedBusyAcks. Default 256.
	Workers int
	// Paths is the number of disjoint paths a lookup over disjoint paths
	// takes (S/Kademlia): each path queries only nodes no other path has
	// queried, so one path of honest nodes finds the closest nodes even if
	// the others run into nodes that lie. Send falls back on such a lookup
	// when greedy routing gets no acknowledgement, and LookupDisjoint (the
	// DHT's replica sets) uses it. Default 3.
	Paths int

	// SubnetPerBucket is the diversity limit of a routing-table bucket: the
	// contacts of one subnet (an IPv4 /24, an IPv6 /48; a loopback or
	// private address is a subnet of its own, see Subnet) that one bucket
	// holds, and the candidates of one subnet in its replacement list. It
	// also bounds the nodes of one subnet in a lookup answer and in every
	// set this node picks by distance (Closest). A contact reached through
	// a relay counts under the relay's subnet. Default 2; a negative value
	// means no limit (a network whose nodes all share one address).
	SubnetPerBucket int
	// SubnetPerTable is the diversity limit of the whole routing table:
	// the contacts of one subnet it holds. Default 8; a negative value
	// means no limit.
	SubnetPerTable int

	// Difficulty is the identity work proof the network requires, in
	// leading zero bits of SHA-256(tag || ID) (see Work): this node's own
	// identity must carry it (New fails with ErrDifficulty otherwise), and
	// frames from a sender whose ID lacks it are dropped and counted in
	// Counters.DroppedNoWork. Every node of a network must use the same
	// value. 0 means DefaultDifficulty (14 bits); a negative value requires
	// no work.
	Difficulty int

	// The tables a node keeps for what others send it are fair shares: one
	// source (a contact, the relay a frame came through, the verified origin
	// of a signed message, or for a stranger its subnet) holds at most
	// 1/SourceShare of each; a source over its share loses its own oldest
	// entries, and a full table evicts from its heaviest source first. Drops
	// are counted in Counters.DroppedSourceShare. Default 16.
	SourceShare int
	// Duplicates is the number of delivered messages remembered to drop
	// their copies (each charged to the message's origin); default its share of
	// MemoryBudget (65536 of the default).
	Duplicates int
	// Reassembly is the memory, in bytes, for routed messages being
	// reassembled from their fragments (each charged to the hop its first
	// fragment came from); default its share of MemoryBudget (8 MiB of the
	// default).
	Reassembly int
	// LinkReassembly is the memory, in bytes, for link messages being
	// reassembled (each charged to the peer that sends it); default its
	// share of MemoryBudget (4 MiB of the default).
	LinkReassembly int
	// Refusals is the number of refusals (nacks) sent per minute at most,
	// each charged to the hop the refused message came from and to the
	// origin it names; default 4096.
	Refusals int
	// StrangerRate is how many times a second the sources of one subnet
	// that have not proved their address (strangers) may make this node
	// sign, check a signature or send a challenge for them; default 200.
	// StrangerRateTotal is the same for all strangers together; default
	// 2000. What is over the rate is dropped and counted in
	// Counters.DroppedRateLimited.
	StrangerRate      int
	StrangerRateTotal int

	// Client makes this node a light client: it joins through an entry
	// point, keeps links to the few full nodes closest to its own ID (its
	// proxies, Proxies of them) and is reached by ID through them, but it is
	// no member of the overlay. Its frames carry wire.FlagClient, so that no
	// node puts it in its routing table or names it in a lookup answer; it
	// is never the node closest to a key, and it forwards, relays and
	// answers lookups for no one. The messages it routes go out through its
	// proxies (its lookups ask other nodes too). Join fails with ErrNoEntryPoint if no entry point answers (a
	// client cannot start a network). Default false: a full member.
	Client bool
	// Proxies is the number of full nodes a light client keeps links with;
	// default 3.
	Proxies int
	// Clients is the number of light clients a full node keeps paths to
	// (its attached clients: those that proved their key and address to
	// it, each forgotten 3·KeepAlive after it was last heard); default 1024.
	// ClientsPerSubnet is the most of them from one subnet (see Subnet);
	// default 8, a negative value means no limit.
	Clients          int
	ClientsPerSubnet int

	Logger *slog.Logger // nil: no logging
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.Network == "" {
		c.Network = "p2psock"
	}
	if c.K <= 0 {
		c.K = 20
	}
	if c.Alpha <= 0 {
		c.Alpha = 3
	}
	def(&c.KeepAlive, 15*time.Second)
	def(&c.Liveness, 60*time.Second)
	def(&c.Refresh, 5*time.Minute)
	def(&c.ReplayWindow, 2*time.Minute)
	def(&c.SendTimeout, 20*time.Second)
	if c.MemoryBudget <= 0 {
		c.MemoryBudget = DefaultMemoryBudget
	}
	b := Budget(c.MemoryBudget)
	if c.RecvQueue <= 0 {
		c.RecvQueue = b.RecvQueue()
	}
	if c.Workers <= 0 {
		c.Workers = 256
	}
	if c.Paths <= 0 {
		c.Paths = 3
	}
	if c.SubnetPerBucket == 0 {
		c.SubnetPerBucket = 2
	}
	if c.SubnetPerTable == 0 {
		c.SubnetPerTable = 8
	}
	defInt := func(d *int, v int) {
		if *d <= 0 {
			*d = v
		}
	}
	defInt(&c.SourceShare, 16)
	defInt(&c.Duplicates, b.Duplicates())
	// A source's share of a reassembly table holds at least one message
	// of the largest size, whatever the budget: a smaller share would
	// refuse every large message (from 32 MiB down, routed ones).
	defInt(&c.Reassembly, max(b.Reassembly(), c.SourceShare*MaxMessage))
	defInt(&c.LinkReassembly, max(b.LinkReassembly(), c.SourceShare*MaxMessage))
	defInt(&c.Refusals, 4096)
	defInt(&c.StrangerRate, 200)
	defInt(&c.StrangerRateTotal, 2000)
	defInt(&c.Proxies, 3)
	defInt(&c.Clients, 1024)
	if c.ClientsPerSubnet == 0 {
		c.ClientsPerSubnet = 8
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Transport sends datagrams for the overlay; nat.Socket is one.
type Transport interface {
	WriteTo(b []byte, addr net.Addr) error
	LocalAddr() net.Addr
}

// Message is a message delivered to this node.
type Message struct {
	Data      []byte
	From      ID  // the origin, whose signature was verified
	To        Key // the ID or key the message was routed to
	ByKey     bool
	Hops      int  // overlay hops the message's last fragment took (0: sent to itself)
	Service   byte // 0 for application messages
	Broadcast bool // delivered by a broadcast to every node
}

// Overlay is one node's membership in a Kademlia-style overlay: its routing
// table, links to its contacts (direct or relayed, kept open through NATs),
// lookups, and acknowledged message routing by ID and by key.
type Overlay struct {
	cfg Config
	// difficulty is the work an ID needs (Config.Difficulty resolved).
	difficulty int
	priv       ed25519.PrivateKey
	self       ID
	net        [8]byte
	tr         Transport
	log        *slog.Logger
	// local is the socket's bound address; localIPs are the machine's
	// addresses when it is bound to all interfaces.
	local    netip.AddrPort
	localIPs []netip.Addr

	mu        sync.Mutex
	tab       *table
	pings     map[uint64]*pendingPing
	pathLost  map[ID]lostAsk         // PathLost Pings awaiting their proof (pathlost.go)
	awaiting  map[netip.AddrPort]int // pings and finds in flight per address: the addresses this node awaits answers from
	finds     map[uint64]pendingFind
	linkWait  map[ID][]chan struct{}
	noLink    map[noLinkKey]time.Time // links that failed lately (link.go)
	hopAcks   map[hopKey]chan struct{}
	acks      map[[16]byte]chan ackResult
	reasm     *fairShare[msgKey, *reassembly]
	seen      *fairShare[msgKey, int64] // delivered data messages: key -> timestamp
	nacked    *fairShare[msgKey, int64] // refusals sent, charged to the hop: key -> when
	nackedBy  *fairShare[msgKey, int64] // the same, charged to the origin named
	paths     map[ID]verifiedPath
	pathsPeak int              // the most entries paths held since it was rebuilt (shrunk)
	observed  netip.AddrPort   // our address as last seen by a contact
	public    bool             // observed is our own socket address, in one family at least
	publicFam [2]bool          // the same per family: IPv4, IPv6
	symmetric bool             // contacts saw different ports: our NAT maps per destination
	seenAt    []netip.AddrPort // the distinct addresses contacts saw us at, the latest last (maxSeenAt)
	filtering Filtering        // what the last CheckNAT concluded; "" before one
	natTests  map[uint64]*natTest
	natRate   *rateLimit // the filtering-test probes sent for others, per subnet
	joined    bool

	// observedScope and observedAt are, per family, the scope of the
	// last observed address taken and when it was seen (observed.go).
	observedScope [2]int8
	observedAt    [2]time.Time

	// announce is set when public changed: the next keepalive round pings
	// every contact, so that each learns the new flag (its record of this
	// node's publicness) at once rather than at its next keepalive;
	// announced is when that last happened (at most every announceEvery).
	announce  bool
	announced time.Time
	// buckets is what the periodic refresh remembers of each bucket up to
	// the deepest (refreshRound).
	buckets []bucketState
	// selfRefreshed is when this node's own ID was last looked up by a
	// refresh.
	selfRefreshed time.Time
	// knownGen counts the changes to the paths cache (with the table's
	// gen, what known is built from); knownBuilt is their sum when it was
	// last built. awaitGen counts the addresses that began or ceased to be
	// awaited (what awaited is built from); awaitBuilt is its value then.
	knownGen, knownBuilt uint64
	awaitGen, awaitBuilt uint64
	knownTab             uint64    // the table's gen when it was last built
	knownAt              time.Time // when the table last changed, as seen then
	// nextCheck is when keepalive may start the next liveness check of a
	// public contact (livenessChecks per Liveness).
	nextCheck time.Time
	// liveness is the current livenessIntervalLocked, in nanoseconds, for
	// pathsTTL (read without mu).
	liveness atomic.Int64

	// awaitingPeak is the most entries awaiting held since it was last
	// rebuilt (shrink.go).
	awaitingPeak int

	recv     *recvQueue // received messages, for Recv
	services handlerTable[Handler]
	// asyncServices are the services answered later (async.go), answers
	// their messages' state.
	asyncServices handlerTable[AsyncHandler]
	answers       answers

	sealer sealer // end-to-end sealing keys (seal.go)

	linkHandlers handlerTable[LinkHandler]
	linkAcks     map[linkKey]chan struct{}
	linkReasm    *fairShare[linkKey, *linkReassembly]
	linkDone     *fairShare[linkKey, time.Time]
	ctr          counters
	lookups      lookupStats            // lookupstats.go
	attached     sync.Map               // service name -> the service (attach.go)
	probes       map[[16]byte]chan ID   // Join's probes in flight: msgID -> the node each arrived from
	proofWait    map[ID][]chan struct{} // Join's probes waiting for a contact's challenge
	answered     map[ID]answeredProof   // the latest challenges this node answered
	clients      map[ID]*attachedClient // light clients with a verified path to them (client.go)
	reattach     atomic.Bool            // (a client) a reattachment is under way
	reattachAt   time.Time              // (a client) when the last one started for want of proxies

	strangers     *rateLimit                               // the work strangers cause, per subnet
	known         atomic.Pointer[knownAddrs]               // the addresses of direct links, as of the last maintenance (Known)
	awaited       atomic.Pointer[knownAddrs]               // the addresses answers are awaited from, as of the last maintenance (Known)
	pathLostCB    atomic.Pointer[func(ID, netip.AddrPort)] // OnPathLost
	lost          []lostContact                            // contacts lost to silence, tried again (recoverLost)
	recovering    atomic.Bool
	floodPinging  atomic.Bool // floodPings runs
	socketDrops   uint64      // the socket's drop count when last read (floodedLocked)
	droppingAt    time.Time   // when it last grew
	cookieKeys    [2][32]byte // the keys of challenge cookies: current, previous
	cookieRotated time.Time

	// scope is the overlay's lifetime: every goroutine it starts runs in
	// it, and Close cancels its context and waits for them. forwards and
	// acks are the budgets of the goroutines started per received packet.
	scope     *lifecycle.Scope
	forwards  *lifecycle.Budget
	acksOut   *lifecycle.Budget
	closing   atomic.Bool  // set first thing in Close: packets are dropped, calls fail
	handling  sync.RWMutex // held (read) while a packet is handled, so that Close can wait for it
	closeOnce sync.Once
	started   atomic.Bool
}

type hopKey struct {
	from  ID
	msgID [16]byte
	kind  byte
	frag  uint16
}

type msgKey struct {
	origin ID
	msgID  [16]byte
	kind   byte
}

// New creates the overlay of a node that sends through tr. Feed it the
// packets whose first byte is 0x20–0x3F with HandlePacket, then call Start.
func New(cfg Config, tr Transport) (*Overlay, error) {
	if len(cfg.Identity) != ed25519.PrivateKeySize {
		return nil, errors.New("p2psock: overlay needs an Ed25519 identity")
	}
	cfg.setDefaults()
	o := &Overlay{
		cfg:        cfg,
		difficulty: cfg.difficulty(),
		priv:       cfg.Identity,
		net:        wire.NetworkTag(cfg.Network),
		tr:         tr,
		log:        cfg.Logger,
		pings:      make(map[uint64]*pendingPing),
		awaiting:   make(map[netip.AddrPort]int),
		natRate:    newRateLimit(natProbeRate, natProbeRateTotal),
		strangers:  newRateLimit(cfg.StrangerRate, cfg.StrangerRateTotal),
		reasm:      newFairShare[msgKey, *reassembly](cfg.Reassembly, cfg.SourceShare, true),
		seen:       newFairShare[msgKey, int64](cfg.Duplicates, cfg.SourceShare, true),
		nacked:     newFairShare[msgKey, int64](cfg.Refusals, cfg.SourceShare, false),
		nackedBy:   newFairShare[msgKey, int64](cfg.Refusals, cfg.SourceShare, false),
		paths:      make(map[ID]verifiedPath),
		linkReasm:  newFairShare[linkKey, *linkReassembly](cfg.LinkReassembly, cfg.SourceShare, true),
		linkDone:   newFairShare[linkKey, time.Time](maxLinkDone, cfg.SourceShare, true),
		recv:       newRecvQueue(cfg.RecvQueue),
		answered:   make(map[ID]answeredProof),
		scope:      lifecycle.NewScope(),
		forwards:   lifecycle.NewBudget(cfg.Workers),
		acksOut:    lifecycle.NewBudget(cfg.Workers),
	}
	o.answers = newAnswers(cfg.Duplicates, cfg.SourceShare, &o.ctr.forgotten)
	copy(o.self[:], cfg.Identity.Public().(ed25519.PublicKey))
	if d := cfg.difficulty(); d > MaxDifficulty || !HasWork(o.self, d) {
		return nil, fmt.Errorf("%w: the network asks for %d bits of work (Config.Difficulty), the identity %s has %d; create one with NewIdentityKey",
			ErrDifficulty, d, o.self, Work(o.self))
	}
	o.rotateCookiesLocked(time.Now())
	o.tab = newTable(o.self, cfg.K, cfg.SubnetPerBucket, cfg.SubnetPerTable)
	if ua, ok := tr.LocalAddr().(*net.UDPAddr); ok {
		o.local = unmap(ua.AddrPort())
		if !o.local.Addr().IsValid() || o.local.Addr().Unmap().IsUnspecified() {
			o.localIPs = interfaceIPs()
		}
	}
	return o, nil
}

// unmap turns an IPv4-mapped IPv6 address into plain IPv4, so that one node
// has one address whichever socket family it was seen through.
func unmap(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

func interfaceIPs() []netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr().Unmap())
		}
	}
	return out
}

// Start starts the maintenance loop: keepalives, dead-contact detection,
// expiry of message state, and periodic refreshes.
func (o *Overlay) Start() {
	if o.started.Swap(true) {
		return
	}
	if n, ok := o.tr.(dropNotifier); ok {
		n.OnDrops(o.onDrops)
	}
	o.maintain()
}

// ID returns this node's ID.
func (o *Overlay) ID() ID { return o.self }

// Difficulty returns the identity work, in leading zero bits (see Work),
// that this node requires of its peers and carries itself.
func (o *Overlay) Difficulty() int { return o.difficulty }

// Sign signs data with this node's identity key; Verify checks it against
// the ID.
func (o *Overlay) Sign(data []byte) []byte { return ed25519.Sign(o.priv, data) }

// Network returns the name of the network the overlay belongs to.
func (o *Overlay) Network() string { return o.cfg.Network }

// Overlay returns o itself, so that an *Overlay is a Host.
func (o *Overlay) Overlay() *Overlay { return o }

// Host is what the services built on the overlay (package group, package
// dht) are started on: anything that has an overlay. A *p2psock.Node is a
// Host, and so is an *Overlay.
type Host interface {
	Overlay() *Overlay
}

// Info is a snapshot of the overlay's state.
type Info struct {
	ID        ID
	Observed  netip.AddrPort // this node's address as its contacts see it; invalid until a contact answered
	Public    bool           // the observed address is this node's own socket address
	Symmetric bool           // contacts saw this node at different ports: its NAT maps per destination
	// SeenAt are the distinct addresses contacts saw this node at, the
	// latest last (at most 8): one per address family, or one per
	// destination behind a NAT that maps per destination.
	SeenAt []netip.AddrPort
	// Filtering is what CheckNAT concluded of the NAT's filtering; "" before
	// it ran.
	Filtering Filtering
	Contacts  int // routing table size
	Relayed   int // contacts reached through a relay
	Punched   int // contacts reached directly at their NAT's mapping (ContactInfo.Kind)
	Counters  Counters
	Network   string
	LocalAddr netip.AddrPort
	Tables    Tables // the size of the tables others fill
	Client    bool   // this node is a light client (Config.Client)
	Clients   int    // light clients attached to this node (Config.Clients at most)
}

// Tables are the sizes of the bounded tables a node keeps for what other
// nodes send it; each stays within its Config bound.
type Tables struct {
	Duplicates     int // delivered messages remembered (Config.Duplicates at most)
	Reassembly     int // bytes of routed messages being reassembled (Config.Reassembly at most)
	LinkReassembly int // bytes of link messages being reassembled (Config.LinkReassembly at most)
	Refusals       int // refusals sent in the last minute (Config.Refusals at most)
}

// Info returns a snapshot of the overlay's state.
func (o *Overlay) Info() Info {
	o.mu.Lock()
	defer o.mu.Unlock()
	inf := Info{ID: o.self, Observed: o.observed, Public: o.public, Symmetric: o.symmetric, Contacts: o.tab.len(),
		SeenAt: slices.Clone(o.seenAt), Filtering: o.filtering,
		Counters: o.counters(), Network: o.cfg.Network, LocalAddr: o.local,
		Tables: Tables{Duplicates: o.seen.len(), Reassembly: o.reasm.cost(), LinkReassembly: o.linkReasm.cost(), Refusals: o.nacked.len()},
		Client: o.cfg.Client, Clients: len(o.clients)}
	for c := range o.tab.contacts() {
		if c.p.relayed() {
			inf.Relayed++
		} else if !c.public {
			inf.Punched++
		}
	}
	return inf
}

// Contacts returns the IDs in the routing table.
func (o *Overlay) Contacts() []ID {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]ID, 0, o.tab.len())
	for c := range o.tab.contacts() {
		out = append(out, c.id)
	}
	return out
}

// DirectContact is a contact linked directly (not through a relay node).
type DirectContact struct {
	ID     ID
	Addr   netip.AddrPort
	Public bool          // it reported itself directly reachable when last heard
	RTT    time.Duration // smoothed round-trip time; 0 if not yet measured
}

// DirectContacts returns up to n contacts linked directly and answering:
// those that reported themselves public first, then the others, each group
// fastest first.
func (o *Overlay) DirectContacts(n int) []DirectContact {
	o.mu.Lock()
	var out []DirectContact
	for c := range o.tab.contacts() {
		if !c.p.relayed() && c.suspect.IsZero() {
			out = append(out, DirectContact{ID: c.id, Addr: c.p.addr, Public: c.public, RTT: c.srtt})
		}
	}
	o.mu.Unlock()
	slices.SortFunc(out, func(a, b DirectContact) int {
		if a.Public != b.Public {
			if a.Public {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.RTT, b.RTT)
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// Close leaves the network and stops: from its first moment the node takes
// no more packets and every call fails with an error that matches
// net.ErrClosed; it tells every contact that it leaves (the flush phase),
// then ends pending calls (they fail the same way) and waits for the
// overlay's goroutines. It does not close the transport. Close is
// idempotent.
func (o *Overlay) Close() error {
	o.closeOnce.Do(func() {
		// Drop packets before saying goodbye: a contact that has taken the
		// leave must not hear from this node again (a Pong after the leave
		// would put it back into the contact's table).
		o.closing.Store(true)
		o.handling.Lock()   // wait for the packet being handled, if any
		o.handling.Unlock() //nolint:staticcheck // SA2001: the empty section waits for the handler to finish
		o.scope.Stop()
		o.sendLeave()
		o.scope.Close()
	})
	return nil
}

// isClosed reports whether Close has begun.
func (o *Overlay) isClosed() bool { return o.closing.Load() }

// done is closed when Close ends the pending calls.
func (o *Overlay) done() <-chan struct{} { return o.scope.Done() }

func randNonce() uint64 {
	var b [8]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:])
}

// frame starts a frame of type t from this node.
func (o *Overlay) frame(t byte, size int) []byte {
	b := make([]byte, 0, wire.HeaderLen+size)
	return wire.AppendHeader(b, wire.Header{Type: t, Net: o.net, Sender: o.self, Client: o.cfg.Client})
}

// sendPath sends a frame for node to along p: to its address, or wrapped in a
// relay frame to the relay contact.
func (o *Overlay) sendPath(to ID, p path, frame []byte) {
	if !p.relayed() {
		o.write(p.addr, frame)
		return
	}
	o.mu.Lock()
	addr, ok := o.directAddrLocked(p.relay())
	o.mu.Unlock()
	if !ok {
		return
	}
	b := o.frame(wire.TypeRelay, 32+len(frame))
	b = append(b, to[:]...)
	o.write(addr, append(b, frame...))
}

func (o *Overlay) write(addr netip.AddrPort, frame []byte) {
	if !addr.IsValid() {
		return
	}
	if err := o.tr.WriteTo(frame, net.UDPAddrFromAddrPort(addr)); err != nil {
		o.log.Debug("write failed", "to", addr, "err", err)
		return
	}
	o.ctr.packetsOut.Add(1)
	o.ctr.bytesOut.Add(uint64(len(frame)))

}

// HandlePacket processes one packet from the socket. It never blocks for long
// and never retains pkt.
func (o *Overlay) HandlePacket(pkt []byte, from net.Addr) {
	o.handling.RLock()
	defer o.handling.RUnlock()
	if o.isClosed() {
		return
	}
	ua, ok := from.(*net.UDPAddr)
	if !ok {
		o.ctr.malformed.Add(1)
		return
	}
	o.ctr.packetsIn.Add(1)
	o.ctr.bytesIn.Add(uint64(len(pkt)))
	o.handleFrame(pkt, path{addr: unmap(ua.AddrPort())})
}

func (o *Overlay) handleFrame(frame []byte, p path) {
	h, body, err := wire.ParseHeader(frame)
	if err != nil {
		if errors.Is(err, wire.ErrLong) {
			o.ctr.oversize.Add(1)
		} else {
			o.ctr.malformed.Add(1)
		}
		return
	}
	if h.Net != o.net {
		o.ctr.wrongNet.Add(1)
		return
	}
	sender := ID(h.Sender)
	if sender == o.self || sender == (ID{}) {
		o.ctr.malformed.Add(1)
		return
	}
	if !HasWork(sender, o.difficulty) {
		o.ctr.noWork.Add(1)
		return
	}
	if p.relayed() && (h.Type == wire.TypeRelay || h.Type == wire.TypeRelayed) {
		o.ctr.malformed.Add(1)
		return
	}
	if !o.serves(h) {
		o.ctr.client.Add(1)
		return
	}
	switch h.Type {
	case wire.TypePing:
		o.onPing(sender, p, body)
	case wire.TypePong:
		o.onPong(sender, p, frame, h.Client)
	case wire.TypeFind:
		o.onFind(sender, p, body)
	case wire.TypeNodes:
		o.onNodes(sender, p, body)
	case wire.TypeIntro:
		o.onIntro(sender, p, body)
	case wire.TypePunch:
		o.onPunch(sender, p, body)
	case wire.TypeRelay:
		o.onRelay(sender, p, body)
	case wire.TypeRelayed:
		o.onRelayed(sender, p, body)
	case wire.TypeRoute:
		o.onRoute(sender, p, frame)
	case wire.TypeHopAck:
		o.onHopAck(sender, p, body)
	case wire.TypeLeave:
		o.onLeave(sender, p, frame)
	case wire.TypeLink:
		o.onLink(sender, p, body)
	case wire.TypeLinkAck:
		o.onLinkAck(sender, p, body)
	case wire.TypeNATTest:
		o.onNATTest(sender, p, body)
	case wire.TypeNATProbe:
		o.onNATProbe(sender, p, body)
	default:
		o.ctr.malformed.Add(1)
	}
}

// touch records traffic from id on p; it reports whether id is a contact on p.
func (o *Overlay) touch(id ID, p path) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	c := o.tab.get(id)
	if c == nil || c.p != p {
		return false
	}
	c.lastSeen = stampOf(time.Now())
	return true
}

// linked is touch for any verified path: a contact's, or a recent one to a
// node whose bucket was full. Using such a path keeps it alive.
func (o *Overlay) linked(id ID, p path) bool {
	if o.touch(id, p) {
		return true
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.touchClientLocked(id, p) {
		return true
	}
	vp, ok := o.paths[id]
	if !ok || vp.p != p || vp.at.since(time.Now()) > o.pathsTTL() {
		return false
	}
	vp.at = stampOf(time.Now())
	o.paths[id] = vp
	return true
}

func (o *Overlay) errClosed(op string) error {
	return &net.OpError{Op: op, Net: "p2p", Err: net.ErrClosed}
}
