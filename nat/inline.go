package nat

import (
	"net"
	"net/netip"
	"sync/atomic"

	"golang.org/x/net/ipv4"
)

// The inline path: quic-go hands every packet that is not QUIC to the
// Socket through a queue of 32 (Transport.ReadNonQUICPacket), which a
// goroutine of the Socket's drains into its own queues for a second one to
// dispatch. For a stream of packets (a relayed QUIC connection, thousands
// of packets a second) that is two goroutine hand-offs a packet, and a
// burst longer than 32 packets is lost whenever the Socket's reader is not
// scheduled in time; QUIC takes the losses for congestion and slows down.
// So the Socket reads the packets of one first byte (the Circuit frames)
// where quic-go reads the socket: quic-go reads through redirectConn's
// ReadBatch, which takes such packets out of each batch and hands them to
// the InlineHandler on quic-go's reading goroutine, in order, before quic-go
// sees the rest.

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
// hands the packets of the inline handler's byte to the handler and
// returns the others, moved to the front of ms; it reads again when a batch
// held none. quic-go gives each message a buffer of its own, so a packet
// moved forward is copied into the buffer of the slot it takes.
func (c *redirectConn) ReadBatch(ms []ipv4.Message, flags int) (int, error) {
	for {
		n, err := c.batch.ReadBatch(ms, flags)
		if err != nil || n == 0 {
			return n, err
		}
		in := c.sock.inline.Load()
		if in == nil {
			return n, nil
		}
		k := 0
		for i := range n {
			m := &ms[i]
			if m.N > 0 && len(m.Buffers) == 1 && m.Buffers[0][0] == in.first && c.sock.takeInline(in.h, m.Buffers[0][:m.N], m.Addr) {
				continue
			}
			if k != i {
				moveMessage(&ms[k], m)
			}
			k++
		}
		if k > 0 {
			return k, nil
		}
	}
}

// moveMessage copies the datagram and control data of src into dst's
// buffers.
func moveMessage(dst, src *ipv4.Message) {
	dst.N = copy(dst.Buffers[0], src.Buffers[0][:src.N])
	dst.NN = copy(dst.OOB, src.OOB[:src.NN])
	dst.Flags = src.Flags
	dst.Addr = src.Addr
}

// takeInline runs h on pkt; it reports false if pkt is to take the
// ordinary path.
func (s *Socket) takeInline(h InlineHandler, pkt []byte, from net.Addr) bool {
	ua, ok := from.(*net.UDPAddr)
	if !ok {
		return false
	}
	src := ua.AddrPort()
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	verdict, to := h(pkt, src)
	switch verdict {
	case Queue:
		return false
	case Forward:
		s.received.Add(1)
		s.inlined.Add(1)
		s.forward(pkt, to)
	default:
		s.received.Add(1)
		s.inlined.Add(1)
	}
	return true
}

// forward sends pkt to to from the reading goroutine.
func (s *Socket) forward(pkt []byte, to netip.AddrPort) {
	uc, ok := s.pc.(*net.UDPConn)
	if !ok {
		return
	}
	if _, err := uc.WriteToUDPAddrPort(pkt, to); err == nil {
		s.sent.Add(1)
	} else {
		s.forwardErrs.Add(1)
	}
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
