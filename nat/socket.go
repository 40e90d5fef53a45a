package nat

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/transport/v2"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/qlog"
	"github.com/quic-go/quic-go/qlogwriter"
	"golang.org/x/net/ipv4"

	"github.com/p2psock/p2psock/internal/ring"
)

// Handler receives the packets whose first byte falls in the range it was
// registered for. pkt is only valid during the call; from is the source address.
type Handler func(pkt []byte, from net.Addr)

// Socket is a node's one UDP socket. A quic.Transport owns it, so QUIC runs at
// full speed on the same port; every packet that is not QUIC is handed to the
// Handler registered for its first byte (STUN 0x00–0x03, overlay 0x20–0x3F).
//
// The non-QUIC packets are taken where quic-go reads the socket, before
// quic-go sees them (quic-go's own queue of them holds 32), into longer
// queues that a goroutine, running while packets wait, hands to the
// handlers; handlers must not block. An idle Socket has no goroutine of its
// own: quic-go's reader is the only one that waits on the socket. Under a
// flood the reader drops what no handler takes before queueing it, and
// packets from the sources that Prefer names (a node's verified contacts)
// have a queue of their own that the dispatcher serves first: junk from
// elsewhere cannot crowd them out.
type Socket struct {
	pc        net.PacketConn
	tr        *quic.Transport
	redirects *redirects    // nil unless pc is a *net.UDPConn (redirect.go)
	nw        transport.Net // where probes are sent (probe.go); nil: the host's

	mu       sync.Mutex
	handlers []handlerRange         // latest first: a later Handle overrides an earlier one
	inline   atomic.Pointer[inline] // inline.go
	// onLongHeader is called on quic-go's read path for each QUIC packet
	// with a long header, before quic-go handles it (OnLongHeader).
	onLongHeader atomic.Pointer[func()]
	peeks        bool // whether quic-go reads through a conn of the Socket's, which calls onLongHeader and takes the non-QUIC packets (takeNonQUIC)

	started  atomic.Bool
	prefer   atomic.Pointer[func(netip.AddrPort) bool]
	ctx      context.Context // cancelled by Close
	cancel   context.CancelFunc
	closed   chan struct{}
	readDone chan struct{} // closed when readLoop ends (only if !peeks)

	// The queues between the reader and the dispatcher (readLoop).
	qmu         sync.Mutex
	pri, rest   ring.Ring[packet] // at most queueLen each
	dispatching bool              // a dispatcher runs
	dispatchers sync.WaitGroup    // the dispatcher, while one runs
	closeMu     sync.Once

	received   atomic.Uint64
	sent       atomic.Uint64
	unhandled  atomic.Uint64
	queueDrops atomic.Uint64
	inlineCounters

	// onDrops is called when the socket starts dropping packets, at most
	// once per dropNoteEvery (OnDrops); droppedAt is when it last was.
	onDrops   atomic.Pointer[func()]
	droppedAt atomic.Int64
}

// dropNoteEvery is the least time between two calls of an OnDrops function.
const dropNoteEvery = time.Second

// OnDrops registers f, to be called (on the socket's read path: it must not
// block) when the socket drops a packet because its reader or dispatcher
// fell behind, at most once a second: a node learns at once that its own
// socket is flooded, rather than from the silence of its peers.
func (s *Socket) OnDrops(f func()) { s.onDrops.Store(&f) }

// dropped counts a packet dropped for a full queue.
func (s *Socket) dropped() {
	s.queueDrops.Add(1)
	f := s.onDrops.Load()
	if f == nil {
		return
	}
	now, last := time.Now().UnixNano(), s.droppedAt.Load()
	if now-last >= int64(dropNoteEvery) && s.droppedAt.CompareAndSwap(last, now) {
		(*f)()
	}
}

// MaxPacket is the size of the buffer non-QUIC packets are read into. quic-go
// itself truncates datagrams to 1452 bytes.
const MaxPacket = 1500

// NewSocket wraps pc. Register handlers, then call Start. Closing the Socket
// closes pc. If pc has a method Net() transport.Net (a simulated network),
// the probes of SendProbe are sent on that network.
func NewSocket(pc net.PacketConn) *Socket {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Socket{
		pc:     pc,
		ctx:    ctx,
		cancel: cancel,
		closed: make(chan struct{}),
		pri:    ring.Ring[packet]{Max: queueLen},
		rest:   ring.Ring[packet]{Max: queueLen},
	}
	qpc := pc
	switch c := pc.(type) {
	case *net.UDPConn:
		s.redirects = &redirects{}
		qpc = &redirectConn{UDPConn: c, to: s.redirects, batch: ipv4.NewPacketConn(c), sock: s}
	case quic.OOBCapablePacketConn:
		// Left as it is: wrapping it would cost quic-go its fast path.
	default:
		qpc = &peekConn{PacketConn: pc, sock: s}
	}
	s.peeks = qpc != pc
	if !s.peeks {
		s.readDone = make(chan struct{})
	}
	s.tr = &quic.Transport{Conn: qpc, Tracer: dropCounter{s}}
	if nc, ok := pc.(interface{ Net() transport.Net }); ok {
		s.nw = nc.Net() // a simulated network: probes are sent on it too
	}
	return s
}

// dropCounter counts the packets quic-go's transport drops for a full
// queue: mostly non-QUIC packets when its queue of them (32) is full because
// the socket's reader fell behind, and QUIC packets its own queues refused
// (quic-go reports both alike).
type dropCounter struct{ s *Socket }

func (d dropCounter) RecordEvent(ev qlogwriter.Event) {
	if pd, ok := ev.(qlog.PacketDropped); ok && pd.Trigger == qlog.PacketDropDOSPrevention {
		d.s.dropped()
	}
}

func (d dropCounter) Close() error { return nil }

// Listen opens a UDP socket on addr ("host:port"; "" for all interfaces, any
// port) and wraps it.
func Listen(addr string) (*Socket, error) {
	if addr == "" {
		addr = ":0"
	}
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	network := "udp" // "[::]" and "" are dual-stack where the host has both
	if ua.IP.To4() != nil {
		network = "udp4" // "0.0.0.0" and IPv4 addresses: IPv4 only
	}
	pc, err := net.ListenUDP(network, ua)
	if err != nil {
		return nil, err
	}
	return NewSocket(pc), nil
}

// Handle registers h for packets whose first byte is in [first, last]. It must
// be called before Start.
func (s *Socket) Handle(first, last byte, h Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handlers = append([]handlerRange{{first, last, h}}, s.handlers...)
}

// handlerRange is a Handler and the first bytes it takes. A node registers
// a handful, so a short list stands in for an array of 256 (2 KiB).
type handlerRange struct {
	first, last byte
	h           Handler
}

// handlerLocked returns the handler of packets whose first byte is b, or nil.
func (s *Socket) handlerLocked(b byte) Handler {
	for _, r := range s.handlers {
		if r.first <= b && b <= r.last {
			return r.h
		}
	}
	return nil
}

// Prefer makes the packets from the sources f accepts go ahead of the
// others when the socket falls behind. f is called for every non-QUIC packet
// on the socket's read path: it must be fast and must not block. Call it
// before Start.
func (s *Socket) Prefer(f func(netip.AddrPort) bool) {
	if f == nil {
		s.prefer.Store(nil)
	} else {
		s.prefer.Store(&f)
	}
}

// OnLongHeader makes the socket call f for every QUIC packet with a long
// header (Initial, Handshake, 0-RTT, Retry: the packets of a handshake) it
// receives, on quic-go's read path, before quic-go handles the packet: f
// may open the transport's listener (quic.Transport.Listen), which then
// takes that very packet. f must be fast once it has done its work; nil
// removes it. It reports false if the socket cannot see the packets quic-go
// reads (a PacketConn given to NewSocket that is quic-go's
// OOBCapablePacketConn but not a *net.UDPConn): f is then never called.
func (s *Socket) OnLongHeader(f func()) bool {
	if f == nil {
		s.onLongHeader.Store(nil)
	} else {
		s.onLongHeader.Store(&f)
	}
	return s.peeks
}

// peeked looks at the first byte of a packet quic-go is about to handle.
func (s *Socket) peeked(b []byte) {
	if len(b) == 0 || b[0]&0x80 == 0 {
		return
	}
	if f := s.onLongHeader.Load(); f != nil {
		(*f)()
	}
}

// Start starts reading packets.
func (s *Socket) Start() {
	if s.started.Swap(true) {
		return
	}
	if s.peeks {
		// quic-go's reader hands the non-QUIC packets to takeNonQUIC, so
		// quic-go never queues one. Its reader starts with the transport,
		// which any write starts: an empty one to startAddr, which the
		// conn drops (ReadNonQUICPacket would start it too, but makes a
		// queue for the packets quic-go does not see here).
		_, _ = s.tr.WriteTo(nil, startAddr)
		return
	}
	// quic-go drops non-QUIC packets until ReadNonQUICPacket is first called;
	// call it once now, so no packet sent after Start returns is lost.
	done, cancel := context.WithCancel(context.Background())
	cancel()
	buf := make([]byte, MaxPacket)
	if n, from, err := s.tr.ReadNonQUICPacket(done, buf); err == nil {
		s.dispatch(buf[:n], from)
	}
	go s.readLoop(buf)
}

// readLoop takes packets off quic-go's short queue as fast as it can and
// hands them to the dispatcher through longer ones, so that a burst (the
// fragments of a large message) is not dropped while a handler works. It
// runs only when quic-go reads the socket through a PacketConn the Socket
// did not wrap (s.peeks false): otherwise takeNonQUIC does its work on
// quic-go's reading goroutine.
func (s *Socket) readLoop(buf []byte) {
	defer close(s.readDone)
	defer s.dispatchers.Wait() // it hands over what is queued, then ends
	for {
		n, from, err := s.tr.ReadNonQUICPacket(s.ctx, buf)
		if err != nil {
			return
		}
		s.enqueue(buf[:n], from)
	}
}

// isNonQUIC reports whether a packet whose first byte is b is not QUIC:
// quic-go takes a packet for QUIC if either of the two high bits of its
// first byte is set.
func isNonQUIC(b byte) bool { return b&0xC0 == 0 }

// takeNonQUIC takes a packet that is not QUIC on quic-go's reading
// goroutine, before quic-go sees it, and queues it for its handler (a copy:
// pkt is quic-go's buffer). Before Start it drops the packet, as quic-go
// does before ReadNonQUICPacket is first called.
func (s *Socket) takeNonQUIC(pkt []byte, from net.Addr) {
	if !s.started.Load() {
		return
	}
	s.enqueue(pkt, from)
}

// enqueue queues a copy of pkt for the dispatcher, which it starts if none
// runs. The dispatcher is a goroutine that runs while packets wait, and
// ends when its queues are empty: an idle socket has none, and its queues
// hold no memory.
func (s *Socket) enqueue(pkt []byte, from net.Addr) {
	n := len(pkt)
	if n == 0 {
		return
	}
	s.mu.Lock()
	h := s.handlerLocked(pkt[0])
	s.mu.Unlock()
	if h == nil { // junk: dropped before it takes a place in a queue
		s.received.Add(1)
		s.unhandled.Add(1)
		return
	}
	pri := false
	if ua, ok := from.(*net.UDPAddr); ok {
		if f := s.prefer.Load(); f != nil && (*f)(ua.AddrPort()) {
			pri = true
		}
	}
	b := getBuf(n)
	copy(b, pkt)
	s.qmu.Lock()
	q := &s.rest
	if pri {
		q = &s.pri
	}
	if !q.Push(packet{b, from}) {
		s.qmu.Unlock()
		s.received.Add(1)
		s.dropped()
		putBuf(b)
		return
	}
	start := !s.dispatching
	s.dispatching = true
	s.qmu.Unlock()
	if start {
		s.dispatchers.Go(s.dispatchLoop)
	}
}

// dispatchLoop hands the queued packets to their handlers, those of
// preferred sources first, until both queues are empty.
func (s *Socket) dispatchLoop() {
	for {
		s.qmu.Lock()
		p, ok := s.pri.Pop()
		if !ok {
			p, ok = s.rest.Pop()
		}
		if !ok {
			s.dispatching = false
			s.qmu.Unlock()
			return
		}
		s.qmu.Unlock()
		s.dispatch(p.b, p.from)
		putBuf(p.b)
	}
}

type packet struct {
	b    []byte
	from net.Addr
}

// queueLen is how many packets wait for the dispatcher at most, in each of
// its two queues.
const queueLen = 512

// bufPool holds the buffers of queued packets. It holds array pointers, not
// slices: putting a slice into an interface allocates, a pointer does not.
var bufPool = sync.Pool{New: func() any { return new([MaxPacket]byte) }}

// getBuf returns a pooled buffer of n bytes; n must not exceed MaxPacket.
func getBuf(n int) []byte { return bufPool.Get().(*[MaxPacket]byte)[:n] }

// putBuf returns a buffer from getBuf to the pool.
func putBuf(b []byte) { bufPool.Put((*[MaxPacket]byte)(b[:MaxPacket])) }

func (s *Socket) dispatch(pkt []byte, from net.Addr) {
	if len(pkt) == 0 {
		return
	}
	s.received.Add(1)
	s.mu.Lock()
	h := s.handlerLocked(pkt[0])
	s.mu.Unlock()
	if h == nil {
		s.unhandled.Add(1)
		return
	}
	h(pkt, from)
}

// WriteTo sends one datagram.
func (s *Socket) WriteTo(b []byte, addr net.Addr) error {
	select {
	case <-s.closed:
		return net.ErrClosed
	default:
	}
	_, err := s.tr.WriteTo(b, addr)
	if err == nil {
		s.sent.Add(1)
	}
	return err
}

// LocalAddr returns the bound address.
func (s *Socket) LocalAddr() net.Addr { return s.pc.LocalAddr() }

// Transport returns the quic.Transport that owns the socket.
func (s *Socket) Transport() *quic.Transport { return s.tr }

// Stats returns the number of non-QUIC packets received and sent, of packets
// dropped because no handler takes their first byte, and of packets dropped
// because the socket's reader or dispatcher fell behind.
func (s *Socket) Stats() (received, sent, unhandled, queueDrops uint64) {
	return s.received.Load(), s.sent.Load(), s.unhandled.Load(), s.queueDrops.Load()
}

// Close closes the transport and the socket, and waits for the read loop.
func (s *Socket) Close() error {
	var err error
	s.closeMu.Do(func() {
		close(s.closed)
		s.cancel()
		err = s.tr.Close()
		if cerr := s.pc.Close(); err == nil && cerr != nil && !errors.Is(cerr, net.ErrClosed) {
			err = cerr
		}
		switch {
		case s.peeks:
			// quic-go's reader, which queues the packets, has returned
			// (Transport.Close waits for it).
			s.dispatchers.Wait()
		case s.started.Load():
			<-s.readDone
		}
	})
	return err
}
