package nat

import (
	"net"
	"net/netip"
	"sync/atomic"

	"golang.org/x/net/ipv4"
)

// The inline path: the Socket takes the packets that are not QUIC where
// quic-go reads the socket (redirectConn's ReadBatch) and queues them for a
// goroutine of its own to dispatch. For a stream of packets (a relayed QUIC
// connection, thousands of packets a second) that is a goroutine hand-off
// a packet, and a wait for the dispatcher whenever it falls behind. So the
// packets of one first byte (the Circuit frames) can be handled where they
// are read: ReadBatch hands them to the InlineHandler on quic-go's reading
// goroutine, in order, before quic-go sees the rest.

// InlineHandler handles a packet on the socket's reading goroutine: it
// must be fast and must not block. pkt is valid only during the call. It
// returns Forward with the address to send pkt to unchanged (the socket
// sends it at once, from the reading goroutine), Consumed if it took or
// dropped the packet, or Queue to hand it to the Handler registered for its
// first byte, on the socket's dispatching goroutine, as if there were no
// inline handler.
type InlineHandler func(pkt []byte, from netip.AddrPort) (verdict InlineVerdict, to netip.AddrPort)

// InlineVerdict is what an InlineHandler did with a packet.
type InlineVerdict int

// The verdicts of an InlineHandler.
const (
	Consumed InlineVerdict = iota // taken or dropped by the handler
	Forward                       // to be sent, unchanged, to the address returned
	Queue                         // to go to the Handler of its first byte
)

// inline is the inline handler of a socket and the byte it handles.
type inline struct {
	first byte
	h     InlineHandler
}

// HandleInline makes h handle the packets whose first byte is first on the
// socket's reading goroutine (see InlineHandler), ahead of the Handler of
// that byte, which gets the packets h returns Queue for. Only packets read
// from a *net.UDPConn (NewSocket's pc) go through h; on any other
// PacketConn (a simulated network) every packet goes to the Handler. A
// second call replaces the first.
func (s *Socket) HandleInline(first byte, h InlineHandler) {
	s.inline.Store(&inline{first: first, h: h})
}

// ReadBatch is what quic-go reads the socket with (it satisfies quic-go's
// batchConn, so quic-go keeps reading up to 8 datagrams a system call). It
// hands the packets of the inline handler's byte to the handler, sends
// those to be forwarded together (one sendmmsg), queues the other packets
// that are not QUIC for their Handlers (Socket.takeNonQUIC), and returns
// the QUIC packets, moved to the front of ms; it reads again when a batch
// held none. quic-go gives each message a buffer of its own, so a packet
// moved forward is copied into the buffer of the slot it takes. ReadBatch
// runs on quic-go's one reading goroutine only, which owns c.out, c.taken
// and c.addrs.
func (c *redirectConn) ReadBatch(ms []ipv4.Message, flags int) (int, error) {
	for {
		n, err := c.batch.ReadBatch(ms, flags)
		if err != nil || n == 0 {
			return n, err
		}
		in := c.sock.inline.Load()
		if cap(c.taken) < n {
			c.taken = make([]bool, n)
		}
		c.taken = c.taken[:n]
		clear(c.taken)
		c.out = c.out[:0]
		for i := range n {
			m := &ms[i]
			if m.N == 0 || len(m.Buffers) != 1 {
				continue
			}
			pkt := m.Buffers[0][:m.N]
			if !isNonQUIC(pkt[0]) {
				c.sock.peeked(pkt) // QUIC long headers open the listener (Socket.OnLongHeader)
				continue
			}
			if in != nil && pkt[0] == in.first {
				taken, fwd, to := c.sock.takeInline(in.h, pkt, m.Addr)
				if fwd {
					c.queueOut(pkt, to)
				}
				if taken {
					c.taken[i] = true
					continue
				}
			}
			c.sock.takeNonQUIC(pkt, m.Addr)
			c.taken[i] = true
		}
		if len(c.out) > 0 {
			c.sendOut()
		}
		k := 0
		for i := range n {
			if c.taken[i] {
				continue
			}
			if k != i {
				moveMessage(&ms[k], &ms[i])
			}
			k++
		}
		if k > 0 {
			return k, nil
		}
	}
}

// queueOut adds pkt, to go to to, to c.out, reusing its messages.
func (c *redirectConn) queueOut(pkt []byte, to netip.AddrPort) {
	j := len(c.out)
	if j < cap(c.out) {
		c.out = c.out[:j+1]
	} else {
		c.out = append(c.out, ipv4.Message{})
	}
	m := &c.out[j]
	if len(m.Buffers) != 1 {
		m.Buffers = make([][]byte, 1)
	}
	m.Buffers[0], m.Addr = pkt, c.udpAddr(to)
}

// sendOut sends the packets of c.out, in as few system calls as the
// kernel takes them; a packet the batch could not send is sent alone.
func (c *redirectConn) sendOut() {
	out := c.out
	for len(out) > 0 {
		n, err := c.batch.WriteBatch(out, 0)
		if n > 0 {
			c.sock.sent.Add(uint64(n))
			out = out[n:]
			continue
		}
		if err != nil { // the first packet failed: alone, then go on
			if _, err := c.WriteTo(out[0].Buffers[0], out[0].Addr); err == nil {
				c.sock.sent.Add(1)
			} else {
				c.sock.forwardErrs.Add(1)
			}
			out = out[1:]
			continue
		}
		return
	}
}

// udpAddr returns a as a *net.UDPAddr, from a small cache (a relay sends to
// the few addresses of the ends of its circuits), so that forwarding does
// not allocate.
func (c *redirectConn) udpAddr(a netip.AddrPort) *net.UDPAddr {
	if ua, ok := c.addrs[a]; ok {
		return ua
	}
	if c.addrs == nil || len(c.addrs) >= maxAddrCache {
		c.addrs = make(map[netip.AddrPort]*net.UDPAddr)
	}
	ua := net.UDPAddrFromAddrPort(a)
	c.addrs[a] = ua
	return ua
}

// maxAddrCache bounds redirectConn's cache of addresses; it starts again
// empty when full.
const maxAddrCache = 1024

// moveMessage copies the datagram and control data of src into dst's
// buffers.
func moveMessage(dst, src *ipv4.Message) {
	dst.N = copy(dst.Buffers[0], src.Buffers[0][:src.N])
	dst.NN = copy(dst.OOB, src.OOB[:src.NN])
	dst.Flags = src.Flags
	dst.Addr = src.Addr
}

// takeInline runs h on pkt: it reports whether h took the packet (false:
// it takes the ordinary path), and whether to forward it, to to.
func (s *Socket) takeInline(h InlineHandler, pkt []byte, from net.Addr) (taken, fwd bool, to netip.AddrPort) {
	ua, ok := from.(*net.UDPAddr)
	if !ok {
		return false, false, to
	}
	src := ua.AddrPort()
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	verdict, to := h(pkt, src)
	if verdict == Queue {
		return false, false, to
	}
	s.received.Add(1)
	s.inlined.Add(1)
	return true, verdict == Forward && to.IsValid(), to
}

// InlineStats returns the number of packets the inline handler took, and
// of those it forwarded that the socket failed to send.
func (s *Socket) InlineStats() (taken, sendErrs uint64) {
	return s.inlined.Load(), s.forwardErrs.Load()
}

// inlineCounters are the Socket's counters of its inline path.
type inlineCounters struct {
	inlined     atomic.Uint64
	forwardErrs atomic.Uint64
}
