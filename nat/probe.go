package nat

import (
	"net"
	"net/netip"

	"github.com/pion/transport/v2"
	"github.com/pion/transport/v2/stdnet"
)

// The filtering test (overlay: CheckNAT) needs a packet from a source the
// probed node has not sent to. A public node sends it on request, once,
// from a socket that lives for that one packet: from its own IP and another
// port, or from another public IP of its host, as a STUN server with two
// addresses does (RFC 5780). The node's one listening socket is unchanged:
// nothing listens on the probe's port.

func (s *Socket) net() (transport.Net, error) {
	if s.nw != nil {
		return s.nw, nil
	}
	return stdnet.NewNet()
}

// SendProbe sends b to to from a socket of its own, closed at once: with
// otherIP false from the address this socket sends to to from, on another
// port; with otherIP true from another public address of the host of the
// same family (ErrNoProbeSource if it has none).
func (s *Socket) SendProbe(b []byte, to netip.AddrPort, otherIP bool) error {
	select {
	case <-s.closed:
		return net.ErrClosed
	default:
	}
	nw, err := s.net()
	if err != nil {
		return err
	}
	to = netip.AddrPortFrom(to.Addr().Unmap(), to.Port())
	network := "udp4"
	if to.Addr().Is6() {
		network = "udp6"
	}
	own, err := s.sourceFor(nw, network, to)
	if err != nil {
		return err
	}
	src := own
	if otherIP {
		if src, err = otherSource(nw, own); err != nil {
			return err
		}
	}
	pc, err := nw.ListenUDP(network, &net.UDPAddr{IP: src.AsSlice()})
	if err != nil {
		return err
	}
	defer pc.Close()
	_, err = pc.WriteTo(b, net.UDPAddrFromAddrPort(to))
	return err
}

// sourceFor is the IP the socket's packets to to leave from: its bound
// address, or, bound to all interfaces, the one the routing table picks
// (a connected UDP socket learns it without sending).
func (s *Socket) sourceFor(nw transport.Net, network string, to netip.AddrPort) (netip.Addr, error) {
	if ua, ok := s.pc.LocalAddr().(*net.UDPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ua.IP); ok && !ip.Unmap().IsUnspecified() {
			return ip.Unmap(), nil
		}
	}
	c, err := nw.DialUDP(network, nil, net.UDPAddrFromAddrPort(to))
	if err != nil {
		return netip.Addr{}, err
	}
	defer c.Close()
	ua, _ := c.LocalAddr().(*net.UDPAddr)
	if ua == nil {
		return netip.Addr{}, ErrNoProbeSource
	}
	ip, _ := netip.AddrFromSlice(ua.IP)
	return ip.Unmap(), nil
}

// otherSource is an address of the host other than own, of its family and,
// like own, reachable from outside: not loopback, link-local or private. One
// on own's interface comes first (the same uplink, as a STUN server's two
// addresses are).
func otherSource(nw transport.Net, own netip.Addr) (netip.Addr, error) {
	if !own.IsGlobalUnicast() || own.IsPrivate() {
		return netip.Addr{}, ErrNoProbeSource // a packet from elsewhere would not take own's way
	}
	ifs, err := nw.Interfaces()
	if err != nil {
		return netip.Addr{}, err
	}
	var first, other netip.Addr
	for _, ifc := range ifs {
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		var cand netip.Addr
		hasOwn := false
		for _, a := range addrs {
			var ip netip.Addr
			switch a := a.(type) {
			case *net.IPNet:
				ip, _ = netip.AddrFromSlice(a.IP)
			case *net.IPAddr:
				ip, _ = netip.AddrFromSlice(a.IP)
			}
			ip = ip.Unmap()
			if ip == own {
				hasOwn = true
			} else if !cand.IsValid() && ip.IsValid() && ip.Is4() == own.Is4() && ip.IsGlobalUnicast() && !ip.IsPrivate() {
				cand = ip
			}
		}
		switch {
		case hasOwn && cand.IsValid():
			first = cand
		case !other.IsValid():
			other = cand
		}
	}
	if first.IsValid() {
		return first, nil
	}
	if other.IsValid() {
		return other, nil
	}
	return netip.Addr{}, ErrNoProbeSource
}
