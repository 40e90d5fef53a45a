// Package hostile builds overlay networks in which a share of the nodes
// misbehave, for the tests and benchmarks of routing among hostile nodes.
// A hostile node is an ordinary overlay node whose socket (a Conn) rewrites
// what it sends and drops what it would forward: the overlay code is the
// project's own, unpatched; only its traffic is hostile, as a patched copy of
// the nodes would make it.
package hostile

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2psock/p2psock/internal/testnet"
	"github.com/p2psock/p2psock/internal/testnet/ovnet"
	"github.com/p2psock/p2psock/internal/wire"
	"github.com/p2psock/p2psock/overlay"
)

// Behaviour says how a hostile node misbehaves.
type Behaviour struct {
	// DropForwarded drops every route fragment (messages, acknowledgements
	// and refusals of other nodes) the node would forward.
	DropForwarded bool
	// AckDropped acknowledges to the previous hop the fragments it drops,
	// so that hop believes them forwarded; without it the node does not
	// acknowledge them either, and the hop routes around it.
	AckDropped bool
	// Lie answers every lookup (Find) only with other hostile nodes: the
	// ones closest to the target.
	Lie bool
	// Withhold makes the node a replica that accepts every DHT store and
	// returns nothing to reads.
	Withhold bool
	// Sink drops every message routed to a key that reaches the node, to
	// forward or to take: it acknowledges their fragments hop by hop if
	// AckDropped is set, and never end to end. (A hostile node that took
	// them would be indistinguishable from an honest one.)
	Sink bool
	// Refuse answers every message by ID it drops with a signed refusal
	// ("no route"), sent straight back to the hop it came from, as if the
	// destination were not in the network.
	Refuse bool
}

// All is every hostile behaviour, with dropped fragments acknowledged.
var All = Behaviour{DropForwarded: true, AckDropped: true, Lie: true, Withhold: true, Sink: true, Refuse: true}

// Colluders is the set of hostile nodes, which lying nodes name to each
// other.
type Colluders struct {
	mu    sync.Mutex
	nodes []wire.Contact
}

func (c *Colluders) add(id overlay.ID, addr netip.AddrPort) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nodes = append(c.nodes, wire.Contact{ID: id, Addr: addr, Flags: wire.FlagPublic})
}

// remove forgets the colluder id (it is opened again under another
// identity).
func (c *Colluders) remove(id overlay.ID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nodes = slices.DeleteFunc(c.nodes, func(x wire.Contact) bool { return x.ID == id })
}

// closest returns up to n colluders closest to target, except self.
func (c *Colluders) closest(target overlay.Key, n int, self overlay.ID) []wire.Contact {
	c.mu.Lock()
	out := slices.DeleteFunc(slices.Clone(c.nodes), func(x wire.Contact) bool { return x.ID == self })
	c.mu.Unlock()
	slices.SortFunc(out, func(a, b wire.Contact) int {
		switch {
		case a.ID == b.ID:
			return 0
		case target.Closer(overlay.ID(a.ID).Key(), overlay.ID(b.ID).Key()):
			return -1
		}
		return 1
	})
	return out[:min(n, len(out))]
}

// maxFinds bounds the lookups a lying node remembers, to answer them.
const maxFinds = 1024

// Conn is the socket of a hostile node: a UDP socket that applies the
// node's Behaviour to the overlay frames going through it.
type Conn struct {
	net.PacketConn
	b         Behaviour
	self      overlay.ID
	priv      ed25519.PrivateKey
	colluders *Colluders
	ov        atomic.Pointer[overlay.Overlay]

	mu    sync.Mutex
	finds map[uint64]overlay.Key // lookups asked of this node: nonce -> target

	// Dropped counts the route fragments the node did not forward.
	Dropped atomic.Uint64
	// Lies counts the lookup answers it rewrote.
	Lies atomic.Uint64
	// Refusals counts the refusals it signed.
	Refusals atomic.Uint64
}

// ReadFrom reads the next datagram the node takes in.
func (c *Conn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil || !c.drop(p[:n], addr) {
			return n, addr, err
		}
	}
}

// drop reports whether an incoming frame from addr is dropped before the
// overlay sees it (a fragment to forward, when dropped fragments are not
// acknowledged; a message to a key the node sinks, acknowledged hop by hop
// if AckDropped), and remembers the targets of lookups.
func (c *Conn) drop(b []byte, addr net.Addr) bool {
	h, body, err := wire.ParseHeader(b)
	if err != nil {
		return false
	}
	switch h.Type {
	case wire.TypeFind:
		if f, err := wire.ParseFind(body); err == nil && c.b.Lie {
			c.mu.Lock()
			if len(c.finds) >= maxFinds {
				clear(c.finds)
			}
			c.finds[f.Nonce] = overlay.Key(f.Target)
			c.mu.Unlock()
		}
	case wire.TypeRoute:
		r, err := wire.ParseRoute(body)
		ov := c.ov.Load()
		if err != nil || ov == nil || r.Msg.Origin == c.self {
			return false
		}
		if r.Msg.Mode == wire.ModeID && overlay.ID(r.Msg.Dest) == c.self {
			return false
		}
		_, forward := ov.NextHop(overlay.Key(r.Msg.Dest))
		if forward && c.b.Refuse && c.b.DropForwarded && r.Msg.Mode == wire.ModeID && r.Msg.Kind == wire.KindData && r.FragIndex == 0 {
			c.refuse(h.Net, r.Msg, addr)
		}
		switch {
		case c.b.Sink && r.Msg.Mode != wire.ModeID && r.Msg.Kind == wire.KindData:
		case forward && c.b.DropForwarded && !c.b.AckDropped:
		default:
			return false
		}
		c.Dropped.Add(1)
		if c.b.AckDropped {
			ack := wire.HopAck{MsgID: r.Msg.MsgID, Kind: r.Msg.Kind, FragIndex: r.FragIndex}
			_, _ = c.PacketConn.WriteTo(ack.Append(wire.AppendHeader(nil, wire.Header{Type: wire.TypeHopAck, Net: h.Net, Sender: c.self})), addr) // a lost hop ack is the sender's problem
		}
		return true
	}
	return false
}

// refuse sends addr a refusal of m signed by this node.
func (c *Conn) refuse(netTag [8]byte, m wire.MsgHeader, addr net.Addr) {
	payload := []byte{wire.NackNoRoute}
	h := wire.MsgHeader{Kind: wire.KindNack, Mode: wire.ModeID, Service: m.Service, Origin: c.self, Dest: m.Origin, MsgID: m.MsgID,
		Timestamp: time.Now().UnixMilli(), Length: uint32(len(payload))}
	r := wire.Route{FragCount: 1, Msg: h, Chunk: payload}
	copy(r.Sig[:], ed25519.Sign(c.priv, h.Signed(netTag, payload)))
	c.Refusals.Add(1)
	_, _ = c.PacketConn.WriteTo(r.Append(wire.AppendHeader(nil, wire.Header{Type: wire.TypeRoute, Net: netTag, Sender: c.self})), addr) // a lost refusal is one attack fewer
}

// WriteTo sends p, or drops or rewrites it as the behaviour says.
func (c *Conn) WriteTo(p []byte, addr net.Addr) (int, error) {
	h, body, err := wire.ParseHeader(p)
	if err != nil {
		return c.PacketConn.WriteTo(p, addr)
	}
	switch h.Type {
	case wire.TypeRoute:
		if r, err := wire.ParseRoute(body); err == nil && c.b.DropForwarded && r.Msg.Origin != c.self {
			c.Dropped.Add(1)
			return len(p), nil
		}
	case wire.TypeNodes:
		if !c.b.Lie {
			break
		}
		n, err := wire.ParseNodes(body)
		if err != nil {
			break
		}
		c.mu.Lock()
		target, ok := c.finds[n.Nonce]
		delete(c.finds, n.Nonce)
		c.mu.Unlock()
		if !ok {
			break
		}
		n.Contacts = c.colluders.closest(target, max(len(n.Contacts), 1), c.self)
		c.Lies.Add(1)
		out := n.Append(slices.Clone(p[:wire.HeaderLen]))
		if _, err := c.PacketConn.WriteTo(out, addr); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.PacketConn.WriteTo(p, addr)
}

// Store statuses and requests of the DHT service (docs/PROTOCOL.md).
const (
	dhtStore = 1
	dhtGet   = 2
	statusOK = 0
)

// withhold is the DHT handler of a withholding replica: every store is
// accepted, every read finds nothing.
func withhold(m overlay.Message) ([]byte, bool) {
	if len(m.Data) > 0 && m.Data[0] == dhtGet {
		reply := []byte{statusOK}
		reply = binary.BigEndian.AppendUint32(reply, 0)
		return append(reply, 0, 0), true
	}
	return []byte{statusOK}, true
}

// Network is a network of overlay nodes on distinct loopback addresses
// (127.0.0.N: each its own subnet, as on the Internet), some of them hostile.
type Network struct {
	Nodes     []*ovnet.Node
	Hostile   []bool // Hostile[i]: node i is hostile
	Conns     []*Conn
	Colluders *Colluders
}

// Honest returns the honest nodes.
func (n *Network) Honest() []*ovnet.Node {
	var out []*ovnet.Node
	for i, nd := range n.Nodes {
		if !n.Hostile[i] {
			out = append(out, nd)
		}
	}
	return out
}

// IsHostile reports whether id is a hostile node.
func (n *Network) IsHostile(id overlay.ID) bool {
	for i, nd := range n.Nodes {
		if nd.ID() == id {
			return n.Hostile[i]
		}
	}
	return false
}

// Close closes every node.
func (n *Network) Close() {
	var wg sync.WaitGroup
	for _, nd := range n.Nodes {
		wg.Go(func() { nd.Close() })
	}
	wg.Wait()
}

// Options describe a network to Build.
type Options struct {
	N        int            // nodes
	Hostile  float64        // share of hostile nodes, 0–1; they are spread evenly (never node 0)
	Behave   Behaviour      // what hostile nodes do
	Config   overlay.Config // a zero SendTimeout is 5 s: it bounds each Join's wait for its neighbours to confirm it
	Parallel int            // nodes joining at once; default 8
	// Attach, if not nil, runs on every honest node before it starts
	// (services register there).
	Attach func(i int, nd *ovnet.Node) error
}

// Build starts a network: node 0 first, then the others, each joined through
// a random earlier honest node (a newcomer is eclipsed if its only entry
// point lies to it; a real one knows a few bootstrap nodes it trusts),
// Parallel at a time. On error the nodes started are closed.
func Build(opt Options) (*Network, error) {
	if opt.N < 1 {
		return nil, errors.New("hostile: no nodes")
	}
	if opt.Parallel <= 0 {
		opt.Parallel = 8
	}
	if opt.Config.SendTimeout == 0 {
		opt.Config.SendTimeout = settleWait
	}
	nw := &Network{Nodes: make([]*ovnet.Node, opt.N), Hostile: make([]bool, opt.N), Conns: make([]*Conn, opt.N), Colluders: &Colluders{}}
	bad := int(float64(opt.N)*opt.Hostile + 0.5)
	for j := range bad {
		nw.Hostile[1+j*(opt.N-1)/bad] = true
	}
	open := func(i int) (*ovnet.Node, error) {
		cfg := opt.Config
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		cfg.Identity = priv
		pc, err := net.ListenPacket("udp", testnet.DistinctLoopbackAddr(i))
		if err != nil {
			return nil, err
		}
		var attach func(*ovnet.Node) error
		conn := pc
		if nw.Hostile[i] {
			c := &Conn{PacketConn: pc, priv: priv, b: opt.Behave, colluders: nw.Colluders, finds: map[uint64]overlay.Key{}}
			copy(c.self[:], priv.Public().(ed25519.PublicKey))
			nw.Conns[i] = c
			conn = c
			attach = func(nd *ovnet.Node) error {
				c.ov.Store(nd.Overlay)
				if opt.Behave.Withhold {
					nd.Handle(wire.ServiceDHT, withhold)
				}
				return nil
			}
			nw.Colluders.add(c.self, pc.LocalAddr().(*net.UDPAddr).AddrPort())
		} else if opt.Attach != nil {
			attach = func(nd *ovnet.Node) error { return opt.Attach(i, nd) }
		}
		nd, err := ovnet.Open(cfg, "", conn, attach)
		if err != nil {
			pc.Close()
			return nil, err
		}
		return nd, nil
	}
	first, err := open(0)
	if err != nil {
		return nil, err
	}
	if err := first.Bind(nil); err != nil {
		return nil, err
	}
	nw.Nodes[0] = first
	errs := make([]error, opt.N)
	sem := make(chan struct{}, opt.Parallel)
	var wg sync.WaitGroup
	var mu sync.Mutex
	joined := []int{0} // the honest nodes that joined: newcomers join through one of them
	pick := func() string {
		mu.Lock()
		defer mu.Unlock()
		return nw.Nodes[joined[testnet.Intn(len(joined))]].Addr()
	}
	for i := 1; i < opt.N; i++ {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			// A newcomer whose entry point did not answer in time (a
			// machine busy with a thousand nodes) tries others, as a
			// program would.
			var nd *ovnet.Node
			var err error
			for try := 0; try < joinTries; try++ {
				if nd, err = open(i); err == nil {
					err = join(nd, pick())
				}
				if err == nil || (!errors.Is(err, overlay.ErrNoEntryPoint) && !errors.Is(err, context.DeadlineExceeded)) {
					break
				}
				if nw.Hostile[i] {
					nw.Colluders.remove(nw.Conns[i].self)
				}
			}
			if err != nil {
				errs[i] = fmt.Errorf("node %d: %w", i, err)
				return
			}
			mu.Lock()
			nw.Nodes[i] = nd
			if !nw.Hostile[i] {
				joined = append(joined, i)
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, nd := range nw.Nodes {
			if nd != nil {
				nd.Close()
			}
		}
		return nil, err
	}
	return nw, nil
}

// joinTries is how many entry points a newcomer tries.
const joinTries = 3

// settleWait bounds the wait of a node's Join for its neighbours to confirm
// it (Config.SendTimeout, unless Options.Config sets it): hostile
// neighbours never do.
const settleWait = 5 * time.Second

// joinWait bounds a node's Join. It covers the bootstrap too: on a machine
// busy with a thousand nodes an entry point may not answer for seconds (its
// socket loses what it cannot read in time), and the newcomer pings it
// again meanwhile, as a program would.
const joinWait = time.Minute

// join joins nd through entry; on failure it closes nd.
func join(nd *ovnet.Node, entry string) error {
	ctx, cancel := context.WithTimeout(context.Background(), joinWait)
	defer cancel()
	if err := nd.Join(ctx, []string{entry}, true); err != nil {
		nd.Close()
		return err
	}
	return nil
}

// Settle lets the network's tables fill: every node looks up its own ID and
// a few random keys, so that contacts learn of each other as a network that
// has run for a while has.
func (n *Network) Settle(ctx context.Context) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for _, nd := range n.Nodes {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			_, _ = nd.Lookup(ctx, nd.ID().Key()) // warming the tables; a failed lookup is not an error here
		})
	}
	wg.Wait()
}
