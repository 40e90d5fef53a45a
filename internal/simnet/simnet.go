package simnet

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/pion/logging"
	"github.com/pion/transport/v2/vnet"
)

// WANCIDR is the address block of the simulated Internet. Public hosts and
// the external side of every NAT get an address each from it, each in a /24
// of its own (1.0.1.1, 1.0.2.1, ...), as hosts spread over the Internet
// are: the overlay's diversity limits count nodes per /24.
const WANCIDR = "1.0.0.0/8"

// NATMappingLifetime is how long an idle NAT mapping survives. Only outbound
// packets refresh a mapping (vnet's behaviour, as RFC 4787 recommends), and
// expiry is checked lazily when the mapping is next looked up.
const NATMappingLifetime = 5 * time.Minute

// maxNATs is the number of distinct 10.x.y.0/24 LAN subnets available.
const maxNATs = 0xffff

// ErrClosed is returned by AddHost and ListenUDP once the Network is closed.
var ErrClosed = errors.New("simnet: network closed")

// Kind is the NAT a host sits behind.
type Kind int

const (
	// Public means no NAT: the host has an address on the simulated Internet.
	Public Kind = iota
	// FullCone is endpoint-independent mapping with endpoint-independent
	// filtering: once a host has sent from a socket, anyone may reach that
	// socket through its mapped address.
	FullCone
	// Restricted is endpoint-independent mapping with address-dependent
	// filtering: only IPs the host has sent to may reach it, from any port.
	Restricted
	// PortRestricted is endpoint-independent mapping with
	// address-and-port-dependent filtering: only the exact ip:port pairs the
	// host has sent to may reach it.
	PortRestricted
	// Symmetric is address-and-port-dependent mapping and filtering: every
	// distinct destination ip:port gets its own external port, reachable only
	// from that destination.
	Symmetric
)

var kindNames = [...]string{
	Public:         "public",
	FullCone:       "fullcone",
	Restricted:     "restricted",
	PortRestricted: "portrestricted",
	Symmetric:      "symmetric",
}

// String returns the lower-case name of the kind, such as "fullcone".
func (k Kind) String() string {
	if k.valid() {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

func (k Kind) valid() bool { return k >= Public && k <= Symmetric }

// natType translates a NATed kind into vnet's NAT parameters.
func (k Kind) natType() *vnet.NATType {
	t := &vnet.NATType{
		Mode:            vnet.NATModeNormal,
		MappingBehavior: vnet.EndpointIndependent,
		MappingLifeTime: NATMappingLifetime,
	}
	switch k {
	case FullCone:
		t.FilteringBehavior = vnet.EndpointIndependent
	case Restricted:
		t.FilteringBehavior = vnet.EndpointAddrDependent
	case PortRestricted:
		t.FilteringBehavior = vnet.EndpointAddrPortDependent
	case Symmetric:
		t.MappingBehavior = vnet.EndpointAddrPortDependent
		t.FilteringBehavior = vnet.EndpointAddrPortDependent
	}
	return t
}

// Network is a simulated Internet: one vnet WAN router holding public hosts
// directly and one NAT router per NATed host. It is safe for concurrent use.
type Network struct {
	logger logging.LoggerFactory
	wan    *vnet.Router

	mu      sync.Mutex
	closed  bool
	nextWAN uint32 // offset of the last WAN address handed out
	nextLAN int    // index of the last LAN subnet handed out
	conns   map[*packetConn]struct{}
}

// New creates a Network and starts its WAN router, whose subnet is WANCIDR.
// Hosts may be added at any time until Close. vnet's log output is governed
// by the usual PION_LOG_<LEVEL> environment variables (for example
// PION_LOG_DEBUG=vnet shows every routed and dropped datagram).
func New() (*Network, error) {
	logger := logging.NewDefaultLoggerFactory()
	wan, err := vnet.NewRouter(&vnet.RouterConfig{
		Name:          "wan",
		CIDR:          WANCIDR,
		LoggerFactory: logger,
	})
	if err != nil {
		return nil, fmt.Errorf("simnet: create WAN router: %w", err)
	}
	if err := wan.Start(); err != nil {
		return nil, fmt.Errorf("simnet: start WAN router: %w", err)
	}
	return &Network{
		logger: logger,
		wan:    wan,
		conns:  make(map[*packetConn]struct{}),
	}, nil
}

// AddHost adds a host of the given kind to the running network. A Public
// host gets the next WAN address directly on the WAN router. Any other kind
// gets a private LAN of its own, 10.X.Y.0/24 (X.Y counting NATs from 0.1),
// where the host is 10.X.Y.2, behind a NAT router of that kind whose
// external address is the next WAN address. One host sits behind each NAT.
func (n *Network) AddHost(kind Kind) (*Host, error) {
	if !kind.valid() {
		return nil, fmt.Errorf("simnet: invalid kind %v", kind)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, ErrClosed
	}
	wanIP, err := n.allocWANIP()
	if err != nil {
		return nil, err
	}
	h := &Host{network: n, kind: kind, publicIP: wanIP}

	if kind == Public {
		h.ip = wanIP
		if h.vnet, err = vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{wanIP.String()}}); err != nil {
			return nil, fmt.Errorf("simnet: create host stack: %w", err)
		}
		if err := n.wan.AddNet(h.vnet); err != nil {
			return nil, fmt.Errorf("simnet: attach host to WAN: %w", err)
		}
		return h, nil
	}

	if n.nextLAN >= maxNATs {
		return nil, fmt.Errorf("simnet: out of LAN subnets after %d NATs", maxNATs)
	}
	n.nextLAN++
	x, y := byte(n.nextLAN>>8), byte(n.nextLAN)
	h.ip = net.IPv4(10, x, y, 2).To4()
	lan, err := vnet.NewRouter(&vnet.RouterConfig{
		Name:          fmt.Sprintf("nat%d-%s", n.nextLAN, kind),
		CIDR:          fmt.Sprintf("10.%d.%d.0/24", x, y),
		StaticIPs:     []string{wanIP.String()},
		NATType:       kind.natType(),
		LoggerFactory: n.logger,
	})
	if err != nil {
		return nil, fmt.Errorf("simnet: create NAT router: %w", err)
	}
	if h.vnet, err = vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{h.ip.String()}}); err != nil {
		return nil, fmt.Errorf("simnet: create host stack: %w", err)
	}
	if err := lan.AddNet(h.vnet); err != nil {
		return nil, fmt.Errorf("simnet: attach host to LAN: %w", err)
	}
	if err := n.wan.AddRouter(lan); err != nil {
		return nil, fmt.Errorf("simnet: attach NAT to WAN: %w", err)
	}
	// A router added to an already started parent is not started by it.
	if err := lan.Start(); err != nil {
		return nil, fmt.Errorf("simnet: start NAT router: %w", err)
	}
	return h, nil
}

// allocWANIP returns the next unused WAN address. The caller holds n.mu.
func (n *Network) allocWANIP() (net.IP, error) {
	_, wan, _ := net.ParseCIDR(WANCIDR)
	ones, bits := wan.Mask.Size()
	base := uint32(wan.IP[0])<<24 | uint32(wan.IP[1])<<16 | uint32(wan.IP[2])<<8 | uint32(wan.IP[3])
	n.nextWAN++
	if n.nextWAN >= 1<<(bits-ones-8) {
		return nil, errors.New("simnet: WAN address space exhausted")
	}
	a := base + n.nextWAN<<8 + 1
	return net.IPv4(byte(a>>24), byte(a>>16), byte(a>>8), byte(a)).To4(), nil
}

// Close closes every socket opened with Host.ListenUDP, which unblocks their
// readers, and stops all routers. Datagrams written afterwards are silently
// discarded. Close is idempotent; only the first call can return an error.
func (n *Network) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	conns := n.conns
	n.conns = nil
	n.mu.Unlock()

	for c := range conns {
		_ = c.Close()
	}
	// Stop also stops every NAT router, all of which AddHost started.
	if err := n.wan.Stop(); err != nil {
		return fmt.Errorf("simnet: stop routers: %w", err)
	}
	return nil
}

// forget removes a closed socket from the set Close would close.
func (n *Network) forget(c *packetConn) {
	n.mu.Lock()
	delete(n.conns, c)
	n.mu.Unlock()
}

// Host is one machine on the simulated Internet, with its own vnet network
// stack. It is safe for concurrent use.
type Host struct {
	network  *Network
	kind     Kind
	ip       net.IP
	publicIP net.IP
	vnet     *vnet.Net
}

// Kind returns the NAT the host sits behind, or Public.
func (h *Host) Kind() Kind { return h.kind }

// IP returns the host's own address: a 10.X.Y.2 address for NATed hosts, the
// WAN address for public ones.
func (h *Host) IP() net.IP { return append(net.IP(nil), h.ip...) }

// PublicIP returns the host's address on the simulated Internet: the NAT's
// external address for NATed hosts, the same as IP for public ones.
func (h *Host) PublicIP() net.IP { return append(net.IP(nil), h.publicIP...) }

// Net returns the host's vnet network stack, for code such as pion/ice that
// takes one. Sockets opened through it directly are plain vnet sockets: they
// do not get the fixes described on ListenUDP and Network.Close does not
// close them.
func (h *Host) Net() *vnet.Net { return h.vnet }

// ListenUDP opens a UDP socket bound to IP():port. Port 0 picks a free port
// in vnet's ephemeral range 5000-5999. The socket behaves like a *net.UDPConn
// in the ways quic-go and typical UDP code rely on, which a raw vnet socket
// does not:
//   - a read deadline in the past fails every later read with an error
//     wrapping os.ErrDeadlineExceeded (vnet fails only the first one);
//   - reading from a closed socket returns an error wrapping net.ErrClosed,
//     and so does writing to it (vnet would still send);
//   - a datagram longer than the read buffer is silently truncated (vnet
//     returns io.ErrShortBuffer, which makes quic-go close its Transport);
//   - SetReadBuffer and SetWriteBuffer succeed and do nothing, so quic-go does
//     not log a buffer-size warning. The receive queue is fixed at 1024
//     datagrams; further datagrams are dropped until it is read.
//
// Write deadlines are accepted and ignored: writes never block.
func (h *Host) ListenUDP(port int) (net.PacketConn, error) {
	if port < 0 || port > 0xffff {
		return nil, fmt.Errorf("simnet: invalid port %d", port)
	}
	n := h.network
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, ErrClosed
	}
	c, err := h.vnet.ListenUDP("udp4", &net.UDPAddr{IP: h.IP(), Port: port})
	if err != nil {
		return nil, err
	}
	pc := &packetConn{
		conn:    c,
		laddr:   c.LocalAddr().(*net.UDPAddr),
		release: n.forget,
		net:     h.vnet,
	}
	n.conns[pc] = struct{}{}
	return pc, nil
}
