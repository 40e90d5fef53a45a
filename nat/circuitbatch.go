package nat

import (
	"net"
	"sync"

	"github.com/quic-go/quic-go"
	"golang.org/x/net/ipv4"

	"github.com/p2psock/p2psock/internal/wire"
)

// Batched circuits: on a node whose socket is a *net.UDPConn the end of a
// circuit gives quic-go what a UDP socket gives it (circuitDFConn satisfies
// quic.OOBCapablePacketConn and quic-go's batchConn), so that quic-go
// reads its datagrams several at a time and writes a burst of packets
// as one GSO batch (UDP_SEGMENT). The end puts each packet of the batch in
// a Circuit frame, and sends the frames, all 9 bytes longer, as one GSO
// batch of the node's socket: one system call where it took one a packet.

var _ quic.OOBCapablePacketConn = (*circuitDFConn)(nil)

// ReadBatch waits for the next datagram of the circuit, as ReadFrom, and
// returns it with those already queued behind it, up to len(ms). Every
// message's source is the relay's address; there is no control data.
// quic-go gives every message one buffer of its own.
func (c *circuitDFConn) ReadBatch(ms []ipv4.Message, _ int) (int, error) {
	n, _, err := c.ReadFrom(ms[0].Buffers[0])
	if err != nil {
		return 0, err
	}
	setMessage(&ms[0], n, c.relay)
	k := 1
	for ; k < len(ms); k++ {
		select {
		case pkt := <-c.in:
			setMessage(&ms[k], copy(ms[k].Buffers[0], pkt), c.relay)
			putBuf(pkt)
		default:
			return k, nil
		}
	}
	return k, nil
}

func setMessage(m *ipv4.Message, n int, from *net.UDPAddr) {
	m.N, m.NN, m.Flags, m.Addr = n, 0, 0, from
}

// ReadMsgUDP is ReadFrom, with no control data.
func (c *circuitDFConn) ReadMsgUDP(b, _ []byte) (n, oobn, flags int, addr *net.UDPAddr, err error) {
	n, _, err = c.ReadFrom(b)
	if err != nil {
		return 0, 0, 0, nil, err
	}
	return n, 0, 0, c.relay, nil
}

// WriteMsgUDP sends b in Circuit frames, whatever addr says: one frame,
// or, if oob asks for a GSO batch (a UDP_SEGMENT control message), one
// frame a segment. The frames of a batch leave in one system call when
// they go out of the node's socket. The other control data (ECN marks) is
// dropped: a relay does not pass it on, and QUIC's ECN validation then
// turns ECN off for the circuit.
func (c *circuitDFConn) WriteMsgUDP(b, oob []byte, _ *net.UDPAddr) (n, oobn int, err error) {
	seg := segmentSize(oob)
	if seg == 0 || seg >= len(b) {
		n, err = c.WriteTo(b, nil)
		return n, 0, err
	}
	select {
	case <-c.done:
		return 0, 0, net.ErrClosed
	default:
	}
	if seg > wire.MaxCircuitPayload {
		return 0, 0, errTooLarge
	}
	t := c.to.Load()
	if t.via != nil { // a hard NAT's extra socket: frame by frame
		for p := b; len(p) > 0; {
			l := min(seg, len(p))
			if _, err := c.WriteTo(p[:l], nil); err != nil {
				return 0, 0, err
			}
			p = p[l:]
		}
		return len(b), 0, nil
	}
	bp := batchPool.Get().(*[]byte)
	frames := (*bp)[:0]
	segs := 0
	for p := b; len(p) > 0; segs++ {
		l := min(seg, len(p))
		frames = wire.AppendCircuitFrame(frames, c.id, p[:l])
		p = p[l:]
	}
	var cm [64]byte // a UDP_SEGMENT message takes 24 bytes
	_, _, err = c.uc.WriteMsgUDP(frames, appendSegmentSize(cm[:0], seg+wire.CircuitHeaderLen), t.addr)
	*bp = frames
	batchPool.Put(bp)
	if err != nil {
		return 0, 0, err
	}
	c.sock.sent.Add(uint64(segs))
	c.batches.Add(1)
	c.batched.Add(uint64(segs))
	return len(b), 0, nil
}

// batchPool holds the buffers WriteMsgUDP frames a batch in: quic-go's
// batches are at most 20 KiB, plus 9 bytes a packet.
var batchPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 24<<10)
	return &b
}}
