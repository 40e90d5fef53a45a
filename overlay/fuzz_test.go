package overlay

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/p2psock/p2psock/internal/wire"
	"github.com/stretchr/testify/require"
)

// The fuzz targets feed one packet to an Overlay (never started: HandlePacket
// needs no goroutine, and Close works without Start) whose transport is an
// in-memory network. FuzzHandlePacket uses a lone node; FuzzHandlePacketLinked
// first links it, with real ping/pong handshakes, to three other in-memory
// overlays, so that frames from verified contacts reach their handlers. Both
// check that the overlays never send an invalid frame, and close every
// overlay, which waits for the goroutines they started.

const fuzzNetwork = "fuzz"

var (
	fuzzTag = wire.NetworkTag(fuzzNetwork)

	keyA = testKey(0xA1) // the fuzzed node
	keyB = testKey(0xB2) // a contact of A; relays between A and D
	keyC = testKey(0xC3) // a contact of A
	keyD = testKey(0xD4) // a contact of B, linked to A through B
	keyS = testKey(0x55) // a stranger

	idA, idB, idC, idD, idS = pubID(keyA), pubID(keyB), pubID(keyC), pubID(keyD), pubID(keyS)

	addrA = netip.MustParseAddrPort("127.0.0.1:4000")
	addrB = netip.MustParseAddrPort("127.0.0.1:5000")
	addrC = netip.MustParseAddrPort("127.0.0.1:5001")
	addrD = netip.MustParseAddrPort("127.0.0.1:5002")
	addrX = netip.MustParseAddrPort("127.0.0.1:5999") // nobody there

	// sources of the packet in FuzzHandlePacketLinked, by src % len.
	fuzzSources = []netip.AddrPort{addrB, addrC, addrD, addrX, netip.MustParseAddrPort("[::ffff:127.0.0.1]:5000")}
)

const (
	srcB byte = iota
	srcC
	srcD
	srcX
	srcBMapped
)

func testKey(b byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize))
}

func pubID(k ed25519.PrivateKey) ID { return ID(k.Public().(ed25519.PublicKey)) }

// datagram is one packet written to the in-memory network.
type datagram struct {
	from, to netip.AddrPort
	data     []byte
}

// fakeNet connects overlays through fakeTransports. Written packets wait in a
// queue until deliver hands them to the overlay at their destination (those to
// nobody are dropped); all are kept in a log.
type fakeNet struct {
	mu    sync.Mutex
	queue []datagram
	log   []datagram
	nodes map[netip.AddrPort]*Overlay
}

type fakeTransport struct {
	n     *fakeNet
	local netip.AddrPort
}

func (tr *fakeTransport) WriteTo(b []byte, addr net.Addr) error {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return errors.New("fakeTransport: not a UDP address")
	}
	d := datagram{from: tr.local, to: unmap(ua.AddrPort()), data: bytes.Clone(b)}
	tr.n.mu.Lock()
	defer tr.n.mu.Unlock()
	tr.n.queue = append(tr.n.queue, d)
	tr.n.log = append(tr.n.log, d)
	return nil
}

func (tr *fakeTransport) LocalAddr() net.Addr { return net.UDPAddrFromAddrPort(tr.local) }

func newFakeNet() *fakeNet { return &fakeNet{nodes: map[netip.AddrPort]*Overlay{}} }

func (n *fakeNet) add(t testing.TB, priv ed25519.PrivateKey, addr netip.AddrPort, k int) *Overlay {
	t.Helper()
	o, err := New(Config{Identity: priv, Network: fuzzNetwork, K: k, Difficulty: -1, SubnetPerBucket: -1, SubnetPerTable: -1}, &fakeTransport{n: n, local: addr})
	require.NoError(t, err)
	n.mu.Lock()
	n.nodes[addr] = o
	n.mu.Unlock()
	return o
}

// deliver hands queued packets, and those their handling sends, to their
// destinations, at most limit of them; it returns how many it took off the queue.
func (n *fakeNet) deliver(limit int) int {
	for i := range limit {
		n.mu.Lock()
		if len(n.queue) == 0 {
			n.mu.Unlock()
			return i
		}
		d := n.queue[0]
		n.queue = n.queue[1:]
		o := n.nodes[d.to]
		n.mu.Unlock()
		if o != nil {
			o.HandlePacket(d.data, net.UDPAddrFromAddrPort(d.from))
		}
	}
	return limit
}

func (n *fakeNet) sent() []datagram {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]datagram(nil), n.log...)
}

func (n *fakeNet) clearLog() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.log = nil
}

// closeAll closes every overlay; Close waits for the goroutines it started.
func (n *fakeNet) closeAll() {
	n.mu.Lock()
	nodes := make([]*Overlay, 0, len(n.nodes))
	for _, o := range n.nodes {
		nodes = append(nodes, o)
	}
	n.mu.Unlock()
	for _, o := range nodes {
		o.Close()
	}
}

// checkSent checks that every packet the overlays wrote is a well-formed frame
// of the fuzz network, sent by the overlay that wrote it, within the size limits.
func (n *fakeNet) checkSent(t *testing.T) {
	t.Helper()
	known := map[ID]bool{}
	for _, o := range n.nodes {
		known[o.self] = true
	}
	for i, d := range n.sent() {
		o := n.nodes[d.from]
		require.NotNil(t, o, "packet %d from unknown address %v", i, d.from)
		checkFrame(t, d.data, o.self, known, false)
	}
}

func checkFrame(t *testing.T, frame []byte, sender ID, known map[ID]bool, inner bool) {
	t.Helper()
	h, body, err := wire.ParseHeader(frame)
	require.NoError(t, err, "frame %x", frame)
	require.Equal(t, fuzzTag, h.Net, "frame %x", frame)
	require.Equal(t, sender, ID(h.Sender), "frame %x", frame)
	switch h.Type {
	case wire.TypeRelay:
		require.False(t, inner, "nested relay %x", frame)
		require.LessOrEqual(t, len(frame), wire.MaxPacket)
		_, in, err := wire.ParseRelay(body)
		require.NoError(t, err, "relay %x", frame)
		checkFrame(t, in, sender, known, true)
		return
	case wire.TypeRelayed:
		require.False(t, inner, "nested relayed %x", frame)
		require.LessOrEqual(t, len(frame), wire.HeaderLen+wire.MaxFrame)
		in, err := wire.ParseRelayed(body)
		require.NoError(t, err, "relayed %x", frame)
		// The inner frame comes from the node that asked for the relay; the
		// relay checked only its sender field.
		require.True(t, known[ID(in[10:42])], "relayed frame from %v, not a node of the network", ID(in[10:42]))
		return
	}
	require.LessOrEqual(t, len(frame), wire.MaxFrame, "frame type %#x", h.Type)
	switch h.Type {
	case wire.TypePing:
		_, err = wire.ParsePing(body)
	case wire.TypePong:
		_, _, err = wire.ParsePong(frame)
	case wire.TypeFind:
		_, err = wire.ParseFind(body)
	case wire.TypeNodes:
		var nodes wire.Nodes
		nodes, err = wire.ParseNodes(body)
		for _, c := range nodes.Contacts {
			require.NotEqual(t, ID(c.ID), sender, "a node lists itself")
		}
	case wire.TypeIntro:
		_, err = wire.ParseIntro(body)
	case wire.TypePunch:
		_, err = wire.ParsePunch(body)
	case wire.TypeRoute:
		_, err = wire.ParseRoute(body)
	case wire.TypeHopAck:
		_, err = wire.ParseHopAck(body)
	case wire.TypeLeave:
		_, _, _, err = wire.ParseLeave(frame)
	case wire.TypeLink:
		_, err = wire.ParseLink(body)
	case wire.TypeLinkAck:
		_, err = wire.ParseLinkAck(body)
	case wire.TypeNATTest:
		_, err = wire.ParseNATTest(body)
	case wire.TypeNATProbe:
		_, err = wire.ParseNATProbe(body)
	default:
		t.Fatalf("frame of unknown type %#x", h.Type)
	}
	require.NoError(t, err, "frame %x", frame)
}

// builder makes frames sent by the node of key priv.
type builder struct {
	priv ed25519.PrivateKey
	id   ID
}

func from(priv ed25519.PrivateKey) builder { return builder{priv: priv, id: pubID(priv)} }

func (b builder) hdr(typ byte) []byte {
	return wire.AppendHeader(nil, wire.Header{Type: typ, Net: fuzzTag, Sender: b.id})
}

func (b builder) ping(flags byte) []byte {
	return wire.Ping{Nonce: 0x1122334455667788, Flags: flags}.Append(b.hdr(wire.TypePing))
}

// probe is a ping padded as nodes pad the pings they start.
func (b builder) probe(flags byte) []byte {
	return wire.Ping{Nonce: 0x1122334455667788, Flags: flags, Pad: wire.ProbeLen - wire.PingLen}.Append(b.hdr(wire.TypePing))
}

func (b builder) pong(pinger ID, nonce uint64, signed bool) []byte {
	f := wire.Pong{Nonce: nonce, Flags: wire.FlagPublic, Observed: addrA}.Append(b.hdr(wire.TypePong))
	if signed {
		f = append(f, ed25519.Sign(b.priv, wire.PongSigned(f, pinger))...)
	}
	return f
}

func (b builder) find(target Key) []byte {
	return wire.Find{Nonce: 77, Target: target}.Append(b.hdr(wire.TypeFind))
}

func (b builder) nodes(nonce uint64, cs ...wire.Contact) []byte {
	return wire.Nodes{Nonce: nonce, Contacts: cs}.Append(b.hdr(wire.TypeNodes))
}

func (b builder) intro(target ID) []byte {
	return wire.Intro{Target: target}.Append(b.hdr(wire.TypeIntro))
}

func (b builder) punch(peer ID, addr netip.AddrPort) []byte {
	return wire.Punch{Peer: peer, Addr: addr}.Append(b.hdr(wire.TypePunch))
}

func (b builder) relay(target ID, inner []byte) []byte {
	return append(append(b.hdr(wire.TypeRelay), target[:]...), inner...)
}

func (b builder) relayed(inner []byte) []byte { return append(b.hdr(wire.TypeRelayed), inner...) }

// hopAckKey is the key of the hop acknowledgement builder.hopAck sends.
func hopAckKey(from ID) hopKey { return hopKey{from: from, msgID: [16]byte{1}, kind: wire.KindData} }

func (b builder) hopAck() []byte {
	return wire.HopAck{MsgID: [16]byte{1}, Kind: wire.KindData}.Append(b.hdr(wire.TypeHopAck))
}

func (b builder) leave(ts time.Time) []byte {
	f := wire.Leave{Timestamp: ts.UnixMilli()}.Append(b.hdr(wire.TypeLeave))
	return append(f, ed25519.Sign(b.priv, wire.LeaveSigned(f))...)
}

// route returns the route frames of a message b originates and sends.
func (b builder) route(kind, mode byte, dest Key, payload []byte, ts time.Time) [][]byte {
	h := wire.MsgHeader{Kind: kind, Mode: mode, Origin: b.id, Dest: dest, MsgID: [16]byte{0xEE, kind, mode},
		Timestamp: ts.UnixMilli(), Length: uint32(len(payload))}
	var r wire.Route
	copy(r.Sig[:], ed25519.Sign(b.priv, h.Signed(fuzzTag, payload)))
	r.Msg = h
	n := wire.FragmentCount(len(payload))
	r.FragCount = uint16(n)
	frames := make([][]byte, n)
	for i := range n {
		r.FragIndex = uint16(i)
		r.Chunk = payload[i*wire.MaxChunk : min((i+1)*wire.MaxChunk, len(payload))]
		frames[i] = r.Append(b.hdr(wire.TypeRoute))
	}
	return frames
}

func (b builder) route1(kind, mode byte, dest Key, payload []byte) []byte {
	return b.route(kind, mode, dest, payload, time.Now())[0]
}

// testLinkService is the service whose link messages A takes in the linked
// net; linkAckID is the message ID of the link acknowledgement A waits for
// from B (builder.linkAck).
const testLinkService byte = 9

var linkAckID = [8]byte{0xAC}

// link returns the link frames of a message b sends with the given ID.
func (b builder) link(service byte, id [8]byte, payload []byte) [][]byte {
	n := wire.LinkFragmentCount(len(payload))
	frames := make([][]byte, n)
	for i := range n {
		l := wire.Link{Service: service, MsgID: id, FragIndex: uint8(i), FragCount: uint8(n), Length: uint32(len(payload)),
			Chunk: payload[i*wire.MaxLinkChunk : min((i+1)*wire.MaxLinkChunk, len(payload))]}
		frames[i] = l.Append(b.hdr(wire.TypeLink))
	}
	return frames
}

func (b builder) natTest(kind byte) []byte {
	return wire.NATTest{Nonce: 0x7E57, Kind: kind}.Append(b.hdr(wire.TypeNATTest))
}

func (b builder) natProbe(kind, status byte) []byte {
	return wire.NATProbe{Nonce: 0x7E57, Kind: kind, Status: status}.Append(b.hdr(wire.TypeNATProbe))
}

func (b builder) linkAck() []byte {
	return wire.LinkAck{MsgID: linkAckID}.Append(b.hdr(wire.TypeLinkAck))
}

// withByte returns a copy of f with byte i set to v.
func withByte(f []byte, i int, v byte) []byte {
	f = bytes.Clone(f)
	f[i] = v
	return f
}

// commonSeeds are frames from sender s to node a, which has no contact.
func commonSeeds(s builder, a ID) [][]byte {
	now := time.Now()
	other := from(testKey(0x77))
	// Only last fragments: the others are MaxFrame bytes long, and the fuzzer
	// takes minutes to minimize inputs that long.
	twoFrags := s.route(wire.KindData, wire.ModeID, a.Key(), bytes.Repeat([]byte{9}, wire.MaxChunk+1), now)
	threeFrags := s.route(wire.KindData, wire.ModeKey, Key{7}, bytes.Repeat([]byte{8}, 2*wire.MaxChunk+20), now)
	badSig := s.route1(wire.KindData, wire.ModeID, a.Key(), []byte("x"))
	badSig[len(badSig)-1] ^= 1
	maxHops := s.route1(wire.KindData, wire.ModeID, a.Key(), []byte("hops"))
	maxHops[wire.HopsOffset] = wire.MaxHops
	seeds := [][]byte{
		s.ping(0),
		s.ping(wire.FlagPublic | wire.FlagWantProof),
		s.pong(a, 0x0102030405060708, false),
		s.pong(a, 0x0102030405060708, true),
		s.find(a.Key()),
		s.nodes(77),
		s.nodes(77, wire.Contact{ID: other.id, Addr: addrX}, wire.Contact{ID: idD, Flags: wire.FlagPublic}),
		s.intro(idB),
		s.punch(other.id, addrX),
		s.relay(idB, s.ping(0)),
		s.relayed(other.ping(wire.FlagWantProof)),
		s.route1(wire.KindData, wire.ModeID, a.Key(), []byte("hello")),
		s.route1(wire.KindData, wire.ModeID, a.Key(), nil),
		s.route1(wire.KindData, wire.ModeKey, Key{1, 2, 3}, []byte("by key")),
		s.route1(wire.KindData, wire.ModeID, other.id.Key(), []byte("no route")),
		s.route1(wire.KindAck, wire.ModeID, a.Key(), nil),
		s.route1(wire.KindNack, wire.ModeID, a.Key(), []byte{wire.NackNoRoute}),
		twoFrags[1],
		threeFrags[2],
		badSig,
		maxHops,
		s.route(wire.KindData, wire.ModeID, a.Key(), []byte("stale"), now.Add(-time.Hour))[0],
		s.hopAck(),
		s.link(testLinkService, [8]byte{1}, []byte("link"))[0],
		s.link(testLinkService, [8]byte{2}, nil)[0],
		s.link(wire.ServiceApp, [8]byte{3}, []byte("no handler"))[0],
		s.link(testLinkService, [8]byte{4}, bytes.Repeat([]byte{7}, wire.MaxLinkChunk+3))[1],
		s.linkAck(),
		s.natTest(wire.ProbeOtherPort),
		s.natTest(wire.ProbeOtherIP),
		s.natProbe(wire.ProbeOtherPort, wire.ProbeIsProbe),
		s.natProbe(wire.ProbeOtherIP, wire.ProbeSent),
		s.leave(now),
		s.leave(now.Add(-time.Hour)),
		withByte(s.ping(0), 1, 2),    // wrong version
		withByte(s.ping(0), 0, 0x40), // not an overlay frame
		wire.Ping{Nonce: 1}.Append(wire.AppendHeader(nil, wire.Header{Type: wire.TypePing, Net: wire.NetworkTag("other"), Sender: s.id})),
		wire.Ping{Nonce: 1}.Append(wire.AppendHeader(nil, wire.Header{Type: wire.TypePing, Net: fuzzTag})), // zero sender
		s.ping(0)[:wire.HeaderLen-1],
		{},
	}
	for _, typ := range []byte{wire.TypePing, wire.TypeLeave, wire.TypeRoute, wire.TypeLink, 0x3F} {
		seeds = append(seeds, s.hdr(typ)) // header only
	}
	return seeds
}

func FuzzHandlePacket(f *testing.F) {
	a := from(keyA)
	s := from(keyS)
	for _, seed := range commonSeeds(s, a.id) {
		f.Add(seed)
	}
	f.Add(a.ping(0)) // from itself
	f.Fuzz(func(t *testing.T, data []byte) {
		n := newFakeNet()
		o := n.add(t, keyA, addrA, 0)
		o.HandlePacket(data, net.UDPAddrFromAddrPort(addrB))
		if h, _, err := wire.ParseHeader(data); err != nil || h.Net != fuzzTag || ID(h.Sender) == o.self || h.Sender == [32]byte{} {
			require.Empty(t, n.sent(), "answered a frame it should drop")
		}
		require.Equal(t, uint64(1), o.Info().Counters.PacketsIn)
		o.Close()
		n.checkSent(t)
		checkTable(t, o.tab)
		// A closed overlay ignores packets.
		n.clearLog()
		o.HandlePacket(data, net.UDPAddrFromAddrPort(addrB))
		require.Empty(t, n.sent())
	})
}

// linkedNet is A linked to B and C directly and to D through B (D is B's
// contact, and cannot reach A directly). K is 2: in A's table, C and D fill
// bucket 1, where the stranger S would go too; S is a replacement candidate
// there. A also has answers pending, with nonces the seeds know: pings to B
// (proof), to a bootstrap address (proof), to C (no proof), a find to B, and
// hop acknowledgements from B and D (builder.hopAck).
type linkedNet struct {
	*fakeNet
	a, b, c, d       *Overlay
	hopAckB, hopAckD chan struct{}
	linkAckB         chan struct{}

	linkMu  sync.Mutex
	linkGot []linkMsg // the link messages of testLinkService A took
}

type linkMsg struct {
	from ID
	data []byte
}

const (
	linkedK           = 2
	nonceB     uint64 = 1 // proof ping to B at addrB
	nonceBoot  uint64 = 2 // bootstrap ping to addrX
	nonceC     uint64 = 3 // keepalive ping to C
	nonceFindB uint64 = 4 // find sent to B
)

func newLinkedNet(t testing.TB) *linkedNet {
	t.Helper()
	n := newFakeNet()
	ln := &linkedNet{fakeNet: n,
		a: n.add(t, keyA, addrA, linkedK), b: n.add(t, keyB, addrB, linkedK),
		c: n.add(t, keyC, addrC, linkedK), d: n.add(t, keyD, addrD, linkedK)}
	handshake := func(x *Overlay, to ID, p path) {
		x.ping(to, p, true)
		n.deliver(100)
	}
	handshake(ln.a, idB, path{addr: addrB})
	handshake(ln.a, idC, path{addr: addrC})
	handshake(ln.b, idD, path{addr: addrD})
	handshake(ln.a, idD, viaPath(idB))
	require.Zero(t, n.deliver(100), "the handshakes did not settle")

	want := map[*Overlay]map[ID]path{
		ln.a: {idB: {addr: addrB}, idC: {addr: addrC}, idD: viaPath(idB)},
		ln.b: {idA: {addr: addrA}, idD: {addr: addrD}},
		ln.c: {idA: {addr: addrA}},
		ln.d: {idB: {addr: addrB}, idA: viaPath(idB)},
	}
	for o, contacts := range want {
		o.mu.Lock()
		got := map[ID]path{}
		for c := range o.tab.contacts() {
			got[c.id] = c.p
		}
		o.mu.Unlock()
		require.Equal(t, contacts, got, "contacts of %v", o.self)
	}

	a := ln.a
	a.mu.Lock()
	require.Equal(t, 1, a.tab.bucketOf(idC))
	require.Equal(t, 1, a.tab.bucketOf(idD))
	require.Equal(t, 1, a.tab.bucketOf(idS))
	require.False(t, a.tab.hasRoom(idS, path{addr: addrX}))
	a.tab.addReplacement(candidate{id: idS, addr: addrX})
	now := time.Now()
	for nonce, pp := range map[uint64]*pendingPing{
		nonceB:    {id: idB, p: path{addr: addrB}, proof: true},
		nonceBoot: {p: path{addr: addrX}, proof: true},
		nonceC:    {id: idC, p: path{addr: addrC}},
	} {
		pp.sent, pp.done = stampOf(now), make(chan struct{})
		a.pings[nonce] = pp
	}
	made(&a.finds)[nonceFindB] = pendingFind{id: idB, ch: make(chan findReply, 1)}
	ln.hopAckB, ln.hopAckD = make(chan struct{}, 1), make(chan struct{}, 1)
	made(&a.hopAcks)[hopAckKey(idB)] = ln.hopAckB
	made(&a.hopAcks)[hopAckKey(idD)] = ln.hopAckD
	ln.linkAckB = make(chan struct{}, 1)
	made(&a.linkAcks)[linkKey{peer: idB, msgID: linkAckID}] = ln.linkAckB
	a.linkHandlers.set(testLinkService, func(from ID, data []byte) bool {
		ln.linkMu.Lock()
		defer ln.linkMu.Unlock()
		ln.linkGot = append(ln.linkGot, linkMsg{from, data})
		return true
	})

	a.mu.Unlock()

	n.clearLog()
	return ln
}

func TestLinkedNetSetup(t *testing.T) {
	ln := newLinkedNet(t)
	defer ln.closeAll()
	require.Equal(t, 3, ln.a.Info().Contacts)
	require.Equal(t, 1, ln.a.Info().Relayed)
	// Everything needed by the seeds: a relayed ping from D (saying it is
	// public, as A's entry has it) reaches A and is answered through B.
	ln.a.HandlePacket(from(keyB).relayed(from(keyD).ping(wire.FlagPublic)), net.UDPAddrFromAddrPort(addrB))
	sent := ln.sent()
	require.Len(t, sent, 1)
	require.Equal(t, addrB, sent[0].to)
	require.Equal(t, wire.TypeRelay, sent[0].data[0])
	before := ln.d.Info().Counters.PacketsIn
	ln.deliver(10)
	require.Equal(t, before+1, ln.d.Info().Counters.PacketsIn)
	// D never sent that ping: it drops the pong as unsolicited.
	require.Equal(t, uint64(1), ln.d.Info().Counters.DroppedReplayed)
}

// TestLinkedNetRecheckPublic: a contact's ping whose public flag disagrees
// with A's entry for it makes A ask again, with a ping of its own (at most
// once in one to two seconds), and the contact's answer sets the entry; the
// ping's flag alone does not.
func TestLinkedNetRecheckPublic(t *testing.T) {
	ln := newLinkedNet(t)
	defer ln.closeAll()
	c := from(keyC)
	public := func(set ...bool) bool {
		ln.a.mu.Lock()
		defer ln.a.mu.Unlock()
		e := ln.a.tab.get(idC)
		if len(set) > 0 {
			e.public = set[0]
		}
		return e.public
	}
	toC := func() []byte {
		var out []byte
		for _, d := range ln.sent() {
			if d.from == addrA && d.to == addrC {
				out = append(out, d.data[0])
			}
		}
		ln.clearLog()
		return out
	}
	src := net.UDPAddrFromAddrPort(addrC)
	require.True(t, public(), "C is public")
	ln.a.HandlePacket(c.ping(wire.FlagPublic), src)
	require.Equal(t, []byte{wire.TypePong}, toC(), "a ping that agrees: answered only")

	public(false) // an entry made before C knew it is public
	ln.a.HandlePacket(c.ping(wire.FlagPublic), src)
	require.False(t, public(), "a ping's flag is not taken as it is")
	require.Equal(t, []byte{wire.TypePong, wire.TypePing}, toC(), "answered, and asked again")
	ln.a.HandlePacket(c.ping(wire.FlagPublic), src)
	require.Equal(t, []byte{wire.TypePong}, toC(), "asked again at most once a second")
	ln.deliver(10) // C answers A's ping
	require.True(t, public(), "C's answer set the entry")
}

// TestLinkedNetHandlers checks that seeds of FuzzHandlePacketLinked reach the
// handlers they are meant for.
func TestLinkedNetHandlers(t *testing.T) {
	a, b, c, d, s := from(keyA), from(keyB), from(keyC), from(keyD), from(keyS)
	other := from(testKey(0x77))
	contacts := func(o *Overlay) []ID {
		o.mu.Lock()
		defer o.mu.Unlock()
		var out []ID
		for c := range o.tab.contacts() {
			out = append(out, c.id)
		}
		return out
	}
	locked := func(o *Overlay, f func()) {
		o.mu.Lock()
		defer o.mu.Unlock()
		f()
	}
	// sentTo returns the types of the frames A sent to addr.
	sentTo := func(ln *linkedNet, addr netip.AddrPort) []byte {
		var out []byte
		for _, d := range ln.sent() {
			if d.from == addrA && d.to == addr {
				out = append(out, d.data[0])
			}
		}
		return out
	}
	tests := []struct {
		name  string
		src   byte
		data  []byte
		check func(t *testing.T, ln *linkedNet)
	}{
		{"route to A from B", srcB, b.route1(wire.KindData, wire.ModeID, a.id.Key(), []byte("hi")), func(t *testing.T, ln *linkedNet) {
			require.Equal(t, uint64(1), ln.a.Info().Counters.MessagesReceived)
			require.Equal(t, []byte{wire.TypeHopAck}, sentTo(ln, addrB)[:1])
		}},
		{"route from D relayed by B", srcB, b.relayed(d.route1(wire.KindData, wire.ModeID, a.id.Key(), []byte("hi"))), func(t *testing.T, ln *linkedNet) {
			require.Equal(t, uint64(1), ln.a.Info().Counters.MessagesReceived)
			require.Equal(t, []byte{wire.TypeRelay}, sentTo(ln, addrB)[:1], "the hop ack goes back through B")
		}},
		{"route to C forwarded", srcB, b.route1(wire.KindData, wire.ModeID, c.id.Key(), []byte("hi")), func(t *testing.T, ln *linkedNet) {
			require.Equal(t, uint64(1), ln.a.Info().Counters.MessagesForwarded)
		}},
		{"intro", srcB, b.intro(c.id), func(t *testing.T, ln *linkedNet) {
			require.Equal(t, []byte{wire.TypePunch}, sentTo(ln, addrC))
		}},
		{"punch", srcB, b.punch(s.id, addrX), func(t *testing.T, ln *linkedNet) {
			require.Equal(t, []byte{wire.TypePing}, sentTo(ln, addrX))
		}},
		{"relay", srcB, b.relay(c.id, b.ping(0)), func(t *testing.T, ln *linkedNet) {
			require.Equal(t, uint64(1), ln.a.Info().Counters.FramesRelayed)
			require.Equal(t, []byte{wire.TypeRelayed}, sentTo(ln, addrC))
		}},
		{"relayed ping", srcB, b.relayed(d.ping(wire.FlagPublic)), func(t *testing.T, ln *linkedNet) {
			require.Equal(t, []byte{wire.TypeRelay}, sentTo(ln, addrB))
		}},
		{"hop ack", srcB, b.hopAck(), func(t *testing.T, ln *linkedNet) {
			require.Len(t, ln.hopAckB, 1)
		}},
		{"relayed hop ack", srcB, b.relayed(d.hopAck()), func(t *testing.T, ln *linkedNet) {
			require.Len(t, ln.hopAckD, 1)
		}},
		{"link message from B", srcB, b.link(testLinkService, [8]byte{1}, []byte("hi"))[0], func(t *testing.T, ln *linkedNet) {
			require.Equal(t, []linkMsg{{idB, []byte("hi")}}, ln.linkGot)
			require.Equal(t, []byte{wire.TypeLinkAck}, sentTo(ln, addrB))
		}},
		{"link message from D relayed by B", srcB, b.relayed(d.link(testLinkService, [8]byte{1}, nil)[0]), func(t *testing.T, ln *linkedNet) {
			require.Equal(t, []linkMsg{{idD, []byte{}}}, ln.linkGot)
			require.Equal(t, []byte{wire.TypeRelay}, sentTo(ln, addrB), "the ack goes back through B")
		}},
		{"link ack", srcB, b.linkAck(), func(t *testing.T, ln *linkedNet) {
			require.Len(t, ln.linkAckB, 1)
		}},
		{"leave", srcC, c.leave(time.Now()), func(t *testing.T, ln *linkedNet) {
			require.ElementsMatch(t, []ID{idB, idD}, contacts(ln.a))
		}},
		{"leave of a relay", srcB, b.leave(time.Now()), func(t *testing.T, ln *linkedNet) {
			require.ElementsMatch(t, []ID{idC}, contacts(ln.a), "D, relayed through B, goes with it")
		}},
		{"relayed leave", srcB, b.relayed(d.leave(time.Now())), func(t *testing.T, ln *linkedNet) {
			require.ElementsMatch(t, []ID{idB, idC}, contacts(ln.a))
		}},
		{"pong", srcB, b.pong(a.id, nonceB, true), func(t *testing.T, ln *linkedNet) {
			locked(ln.a, func() { require.NotContains(t, ln.a.pings, nonceB) })
			require.Equal(t, addrA, ln.a.Info().Observed)
		}},
		{"bootstrap pong", srcX, s.pong(a.id, nonceBoot, true), func(t *testing.T, ln *linkedNet) {
			locked(ln.a, func() {
				require.NotContains(t, ln.a.pings, nonceBoot)
				require.Equal(t, path{addr: addrX}, ln.a.paths[idS].p, "bucket full: a verified path outside the table")
			})
		}},
		{"nodes", srcB, b.nodes(nonceFindB, wire.Contact{ID: c.id, Addr: addrC}), func(t *testing.T, ln *linkedNet) {
			locked(ln.a, func() { require.Len(t, ln.a.finds[nonceFindB].ch, 1) })
		}},
		{"ping from a stranger in a full bucket", srcX, other.probe(wire.FlagWantProof), func(t *testing.T, ln *linkedNet) {
			require.Equal(t, []byte{wire.TypePing, wire.TypePong}, sentTo(ln, addrX), "a challenge, then the answer")
			locked(ln.a, func() {
				require.Equal(t, 1, ln.a.tab.bucketOf(other.id))
				require.NotContains(t, ln.a.tab.replOf(1), repls(candidate{id: other.id, addr: addrX, public: false})[0],
					"no state for a stranger before it proves its address")
				for _, pp := range ln.a.pings {
					require.NotEqual(t, other.id, pp.id, "the challenge is stateless")
				}
			})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln := newLinkedNet(t)
			defer ln.closeAll()
			ln.a.HandlePacket(tt.data, net.UDPAddrFromAddrPort(fuzzSources[tt.src]))
			require.Zero(t, ln.a.Info().Counters.Dropped, "%+v", ln.a.Info().Counters)
			tt.check(t, ln)
		})
	}
}

func FuzzHandlePacketLinked(f *testing.F) {
	a, b, c, d, s := from(keyA), from(keyB), from(keyC), from(keyD), from(keyS)
	now := time.Now()
	for _, seed := range commonSeeds(b, a.id) {
		f.Add(srcB, seed)
	}
	// Frames from a stranger are FuzzHandlePacket's seeds; here its bucket is
	// full.
	dRoute := d.route1(wire.KindData, wire.ModeID, a.id.Key(), []byte("from D"))
	dForwarded := withByte(dRoute, wire.HopsOffset, 1)
	copy(dForwarded[10:42], b.id[:]) // forwarded by B
	for _, sd := range []struct {
		src  byte
		data []byte
	}{
		{srcBMapped, b.ping(wire.FlagWantProof)},
		{srcX, b.ping(wire.FlagWantProof)}, // B at a new address
		{srcD, d.ping(wire.FlagWantProof)}, // D reachable directly after all
		{srcC, c.ping(wire.FlagPublic)},
		{srcB, b.find(c.id.Key())},
		{srcB, b.intro(c.id)},
		{srcB, b.intro(d.id)},
		{srcC, c.intro(b.id)},
		{srcB, b.punch(c.id, addrC)},
		{srcB, b.punch(d.id, addrD)},
		{srcB, b.punch(a.id, addrA)},
		{srcB, b.relay(c.id, b.ping(wire.FlagWantProof))},
		{srcB, b.relay(c.id, b.route1(wire.KindData, wire.ModeID, c.id.Key(), []byte("via A")))},
		{srcB, b.relay(d.id, b.ping(0))},
		{srcB, b.relay(c.id, c.ping(0))},
		{srcD, d.relay(c.id, d.ping(0))},
		{srcB, b.relayed(d.ping(wire.FlagWantProof))},
		{srcB, b.relayed(dRoute)},
		{srcB, b.relayed(d.hopAck())},
		{srcB, b.relayed(d.link(testLinkService, [8]byte{5}, []byte("from D"))[0])},
		{srcB, b.link(testLinkService, [8]byte{6}, []byte("from B"))[0]},
		{srcB, b.link(testLinkService, [8]byte{7}, bytes.Repeat([]byte{1}, wire.MaxLinkChunk+1))[1]},
		{srcB, b.linkAck()},
		{srcC, b.linkAck()}, // B's ack from C's address
		{srcB, b.natTest(wire.ProbeOtherPort)},
		{srcB, b.natTest(wire.ProbeOtherIP)},
		{srcB, b.relayed(d.natTest(wire.ProbeOtherPort))},
		{srcX, b.natProbe(wire.ProbeOtherPort, wire.ProbeIsProbe)},
		{srcB, b.natProbe(wire.ProbeOtherIP, wire.ProbeRefused)},
		{srcX, s.link(testLinkService, [8]byte{8}, []byte("stranger"))[0]},
		{srcB, b.relayed(d.leave(now))},
		{srcB, b.relayed(d.find(c.id.Key()))},
		{srcB, b.relayed(a.ping(0))},
		{srcB, b.relayed(c.ping(0))},
		{srcB, b.relayed(b.relayed(d.ping(0)))},
		{srcB, dForwarded},
		{srcB, b.route1(wire.KindData, wire.ModeID, c.id.Key(), []byte("to C"))},
		{srcB, b.route1(wire.KindData, wire.ModeID, d.id.Key(), []byte("to D"))},
		{srcB, b.route1(wire.KindData, wire.ModeKey, c.id.Key(), []byte("near C"))},
		{srcB, b.route1(wire.KindData, wire.ModeKey, d.id.Key(), []byte("near D"))},
		{srcC, c.route1(wire.KindData, wire.ModeID, b.id.Key(), []byte("C to B"))},
		{srcC, c.leave(now)},
		{srcC, b.leave(now)}, // B's leave from C's address
		{srcB, b.pong(a.id, nonceB, true)},
		{srcB, b.pong(a.id, nonceB, false)},
		{srcX, b.pong(a.id, nonceB, true)}, // from another address
		{srcC, c.pong(a.id, nonceB, true)}, // from the wrong node
		{srcX, s.pong(a.id, nonceBoot, true)},
		{srcX, d.pong(a.id, nonceBoot, true)},
		{srcC, c.pong(a.id, nonceC, false)},
		{srcB, b.relayed(c.pong(a.id, nonceC, false))},
		{srcB, b.nodes(nonceFindB, wire.Contact{ID: c.id, Addr: addrC}, wire.Contact{ID: s.id, Addr: addrX})},
		{srcC, c.nodes(nonceFindB)},
		{srcX, s.ping(wire.FlagWantProof)}, // bucket full: a replacement
		{srcX, s.route1(wire.KindData, wire.ModeID, a.id.Key(), []byte("stranger"))},
		{srcX, s.find(s.id.Key())},
	} {
		f.Add(sd.src, sd.data)
	}
	f.Fuzz(func(t *testing.T, src byte, data []byte) {
		ln := newLinkedNet(t)
		ln.a.HandlePacket(data, net.UDPAddrFromAddrPort(fuzzSources[int(src)%len(fuzzSources)]))
		if h, _, err := wire.ParseHeader(data); err != nil || h.Net != fuzzTag || ID(h.Sender) == idA || h.Sender == [32]byte{} {
			require.Empty(t, ln.sent(), "answered a frame it should drop")
		}
		// Let the other nodes answer, and the goroutines A started send.
		ln.deliver(1000)
		runtime.Gosched()
		ln.deliver(1000)
		ln.closeAll()
		ln.checkSent(t)
		for _, o := range ln.nodes {
			checkTable(t, o.tab)
		}
	})
}
