// Package sim is an in-memory network for simulating large p2psock networks
// in virtual time. Its sockets are net.PacketConns that the real overlay,
// group and DHT code run on unchanged; run inside a testing/synctest bubble,
// the delays between them are virtual, so a simulated minute of a
// 10,000-node network takes only the CPU its nodes spend.
//
// Every host has an address of its own on a simulated Internet, each in a
// /24 of its own (the overlay's diversity limits count nodes per /24).
// A datagram arrives after the one-way delay between its two hosts (half the
// round-trip time of a Latency model: RIPE, measured on the Internet, or
// Plane, synthetic), or is lost with probability Loss, or is dropped and
// counted when the receiver's queue is full.
package sim

import (
	"errors"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// QueueLen is the number of datagrams a socket holds before it drops: the
// receive buffer of a real socket.
const QueueLen = 512

// ErrClosed is returned by the operations of a closed socket.
var ErrClosed = net.ErrClosed

// Latency gives the round-trip time between two hosts, by their numbers.
type Latency func(a, b int) time.Duration

// Network is a simulated Internet.
type Network struct {
	// Latency is the RTT model (nil: Plane's). Set it before the first
	// Listen.
	Latency Latency
	// Loss is the probability that a datagram is lost.
	Loss float64
	// Queue is the number of datagrams a socket holds before it drops
	// (0: QueueLen). Set it before the first Listen; a large simulation
	// saves memory with a shorter queue.
	Queue int

	mu    sync.Mutex
	socks map[netip.AddrPort]*Conn
	hosts int
	rng   *rand.Rand

	Sent, Delivered, Lost, QueueDrops, Bytes atomic.Uint64
	// ByFirstByte counts the datagrams sent by their first byte (the
	// overlay's frame type, QUIC's header form, STUN's 0x00-0x03).
	ByFirstByte [256]atomic.Uint64
}

// New returns an empty network whose random choices (loss, the default
// latency model's coordinates) follow seed.
func New(seed uint64) *Network {
	return &Network{socks: map[netip.AddrPort]*Conn{}, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Host returns the address of host i: 1.a.b.1 with a.b = i+1, so every host
// is in a /24 of its own (up to 65,534 hosts), then 2.a.b.1 and so on.
func Host(i int) netip.Addr {
	i++
	return netip.AddrFrom4([4]byte{byte(1 + i>>16), byte(i >> 8), byte(i), 1})
}

// Listen opens a socket on host i (see Host) at port.
func (n *Network) Listen(i, port int) (*Conn, error) {
	addr := netip.AddrPortFrom(Host(i), uint16(port))
	q := n.Queue
	if q <= 0 {
		q = QueueLen
	}
	c := &Conn{n: n, addr: addr, from: net.UDPAddrFromAddrPort(addr), host: i, in: make(chan datagram, q), closed: make(chan struct{}), changed: make(chan struct{})}
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.socks[addr]; ok {
		return nil, errors.New("sim: address in use")
	}
	n.socks[addr] = c
	n.hosts = max(n.hosts, i+1)
	return c, nil
}

// Conn returns the open socket at addr, or nil.
func (n *Network) Conn(addr netip.AddrPort) *Conn {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.socks[addr]
}

func (n *Network) float() float64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.rng.Float64()
}

// RTT is the round-trip time between hosts a and b.
func (n *Network) RTT(a, b int) time.Duration {
	if n.Latency != nil {
		return n.Latency(a, b)
	}
	return Plane(a, b)
}

// Plane is the default latency model, synthetic: hosts are points on a
// plane (a fixed pseudo-random position per host number) whose Euclidean
// distance is the propagation part of the RTT, plus an access delay per host
// (its last mile) drawn from a log-normal law. Over random pairs of hosts its
// RTTs are 34 / 66 / 101 / 130 ms at the 10th / 50th / 90th / 99th
// percentile, at most about 200 ms. It is not a measured data set; a
// Latency built from one, such as RIPE, replaces it.
func Plane(a, b int) time.Duration {
	if a == b {
		return 100 * time.Microsecond
	}
	xa, ya, da := place(a)
	xb, yb, db := place(b)
	d := math.Hypot(xa-xb, ya-yb) // 0..~1.41
	ms := 90*d + da + db + 2
	return time.Duration(ms * float64(time.Millisecond))
}

// place is host i's position and access delay (ms).
func place(i int) (x, y, access float64) {
	r := rand.New(rand.NewPCG(uint64(i), 0x5eed))
	x, y = r.Float64(), r.Float64()
	access = math.Exp(1.6 + 0.9*r.NormFloat64()) // median ~5 ms, 1 in 100 above ~40 ms
	return x, y, min(access, 200)
}

type datagram struct {
	b    []byte
	from *net.UDPAddr
}

// Conn is a simulated UDP socket.
type Conn struct {
	n    *Network
	addr netip.AddrPort
	from *net.UDPAddr // addr, the source of the datagrams it sends (shared: read only)
	host int
	in   chan datagram

	closeOnce sync.Once
	closed    chan struct{}
	crashed   atomic.Bool

	mu       sync.Mutex
	deadline time.Time
	changed  chan struct{} // closed when the deadline changes
}

// ReadFrom reads the next datagram.
func (c *Conn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		if n, from, moved, err := c.readOnce(p); !moved {
			return n, from, err
		}
	}
}

// readOnce waits for a datagram under the read deadline as it is now;
// moved says that the deadline changed meanwhile, to be waited on again.
func (c *Conn) readOnce(p []byte) (n int, from net.Addr, moved bool, err error) {
	c.mu.Lock()
	dl, changed := c.deadline, c.changed
	c.mu.Unlock()
	var timeout <-chan time.Time
	if !dl.IsZero() {
		d := time.Until(dl)
		if d <= 0 {
			return 0, nil, false, os.ErrDeadlineExceeded
		}
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case dg := <-c.in:
		return copy(p, dg.b), dg.from, false, nil
	case <-c.closed:
		return 0, nil, false, ErrClosed
	case <-timeout:
		return 0, nil, false, os.ErrDeadlineExceeded
	case <-changed:
		return 0, nil, true, nil
	}
}

// WriteTo sends p to addr: it arrives after the one-way delay, unless lost.
func (c *Conn) WriteTo(p []byte, addr net.Addr) (int, error) {
	select {
	case <-c.closed:
		return 0, ErrClosed
	default:
	}
	if c.crashed.Load() {
		return len(p), nil
	}
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, errors.New("sim: not a UDP address")
	}
	to := ua.AddrPort()
	to = netip.AddrPortFrom(to.Addr().Unmap(), to.Port())
	n := c.n
	n.Sent.Add(1)
	n.Bytes.Add(uint64(len(p)))
	if len(p) > 0 {
		n.ByFirstByte[p[0]].Add(1)
	}
	if n.Loss > 0 && n.float() < n.Loss {
		n.Lost.Add(1)
		return len(p), nil
	}
	n.mu.Lock()
	dst := n.socks[to]
	n.mu.Unlock()
	if dst == nil || !to.Addr().Is4() {
		n.Lost.Add(1)
		return len(p), nil
	}
	dg := datagram{b: append([]byte(nil), p...), from: c.from}
	time.AfterFunc(n.RTT(c.host, dst.host)/2, func() {
		if dst.crashed.Load() {
			n.Lost.Add(1)
			return
		}
		select {
		case dst.in <- dg:
			n.Delivered.Add(1)
		case <-dst.closed:
			n.Lost.Add(1)
		default:
			n.QueueDrops.Add(1)
		}
	})
	return len(p), nil
}

// Crash makes the socket's host die in silence: from now on it sends
// nothing and receives nothing, and nothing tells its peers (no ICMP error).
// Close frees it.
func (c *Conn) Crash() { c.crashed.Store(true) }

// Close closes the socket; datagrams on their way to it are lost.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		close(c.closed)
		c.n.mu.Lock()
		delete(c.n.socks, c.addr)
		c.n.mu.Unlock()
	})
	return nil
}

// LocalAddr is the socket's address.
func (c *Conn) LocalAddr() net.Addr { return net.UDPAddrFromAddrPort(c.addr) }

// SetDeadline sets the read deadline (writes never block).
func (c *Conn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

// SetReadDeadline sets the deadline of reads, those waiting included from
// their next wait on.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	return nil
}

// SetWriteDeadline does nothing: writes never block.
func (c *Conn) SetWriteDeadline(time.Time) error { return nil }

// SetReadBuffer does nothing: the queue of a socket is QueueLen datagrams.
func (c *Conn) SetReadBuffer(int) error { return nil }

// SetWriteBuffer does nothing: writes never block.
func (c *Conn) SetWriteBuffer(int) error { return nil }
