package nat

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/huin/goupnp/dcps/internetgateway2"
	natpmp "github.com/jackpal/go-nat-pmp"
)

// Port mapping: a node behind a home router asks it to forward a public
// port to the node's socket, with NAT-PMP (RFC 6886, which routers that
// speak PCP answer too) and then UPnP-IGD (WANIPConnection), renews the
// mapping before its lease ends and removes it when it closes. The mapped
// address is then a candidate peers can reach without hole punching.

// Port mapping protocols a PortMapper reports.
const (
	PortMapNATPMP = "nat-pmp"
	PortMapUPnP   = "upnp"
)

const (
	portMapLease     = time.Hour        // the lease asked for; renewed at half of what the router granted
	portMapRetry     = 2 * time.Minute  // after no router answered, or the mapping failed
	portMapTimeout   = 3 * time.Second  // one request (NAT-PMP retries within it)
	portMapDiscovery = 4 * time.Second  // UPnP discovery (SSDP) and its requests
	portMapMinRenew  = 30 * time.Second // a router granting less is renewed this often
	portMapDesc      = "p2psock"
)

// PortMapping is a mapping the router granted.
type PortMapping struct {
	External netip.AddrPort // the router's public address and port, forwarded to the node's socket
	Protocol string         // PortMapNATPMP or PortMapUPnP
}

// PortMapper keeps a port mapping of the node's socket on the router in
// front of it. Its methods are safe for concurrent use.
type PortMapper struct {
	local  netip.AddrPort
	gw     netip.Addr
	logger *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	mapping PortMapping
	ok      bool
	tried   bool
	upnp    upnpClient // the UPnP service that granted the mapping, for renewal and removal
}

// upnpClient is what the mapper uses of goupnp's WANIPConnection clients.
type upnpClient interface {
	AddPortMappingCtx(ctx context.Context, remoteHost string, extPort uint16, proto string, intPort uint16,
		intClient string, enabled bool, desc string, lease uint32) error
	DeletePortMappingCtx(ctx context.Context, remoteHost string, extPort uint16, proto string) error
	GetExternalIPAddressCtx(ctx context.Context) (string, error)
}

// StartPortMapper starts keeping a mapping of local (the node's socket: a
// LAN address, not a wildcard) on the router at gw (the invalid Addr: the
// default route's gateway). Close removes the mapping.
func StartPortMapper(local netip.AddrPort, gw netip.Addr, logger *slog.Logger) *PortMapper {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &PortMapper{local: local, gw: gw, logger: logger, cancel: cancel, done: make(chan struct{})}
	go m.run(ctx)
	return m
}

// Mapping returns the mapping the router granted, if any.
func (m *PortMapper) Mapping() (PortMapping, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mapping, m.ok
}

// Local returns the socket address the mapping forwards to.
func (m *PortMapper) Local() netip.AddrPort { return m.local }

// Status describes the mapper's state: "nat-pmp" or "upnp" with the
// mapped address, "trying", or "none" (no router granted one).
func (m *PortMapper) Status() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.ok:
		return m.mapping.Protocol + " " + m.mapping.External.String()
	case m.tried:
		return "none"
	}
	return "trying"
}

// Close stops renewing and removes the mapping (bounded by a few seconds).
func (m *PortMapper) Close() error {
	m.cancel()
	<-m.done
	return nil
}

func (m *PortMapper) run(ctx context.Context) {
	defer close(m.done)
	for {
		lease, err := m.mapOnce(ctx)
		m.mu.Lock()
		m.tried = true
		m.mu.Unlock()
		wait := portMapRetry
		if err == nil {
			wait = max(lease/2, portMapMinRenew)
		} else if ctx.Err() == nil {
			m.logger.Debug("port mapping", "err", err)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			m.unmap()
			return
		}
	}
}

// mapOnce asks for (or renews) the mapping: NAT-PMP first, then UPnP.
func (m *PortMapper) mapOnce(ctx context.Context) (time.Duration, error) {
	gw := m.gw
	if !gw.IsValid() {
		var err error
		if gw, err = defaultGateway(); err != nil {
			return 0, err
		}
	}
	port := int(m.local.Port())
	c := natpmp.NewClientWithTimeout(net.IP(gw.AsSlice()), portMapTimeout)
	if r, err := c.AddPortMapping("udp", port, port, int(portMapLease/time.Second)); err == nil {
		ext, err := c.GetExternalAddress()
		if err == nil {
			ip := netip.AddrFrom4(ext.ExternalIPAddress)
			m.set(PortMapping{External: netip.AddrPortFrom(ip, r.MappedExternalPort), Protocol: PortMapNATPMP}, nil)
			return time.Duration(r.PortMappingLifetimeInSeconds) * time.Second, nil
		}
	}
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	return m.mapUPnP(ctx)
}

// mapUPnP asks the router's UPnP-IGD service for the mapping (the one
// that granted it before, else the first found that grants it).
func (m *PortMapper) mapUPnP(ctx context.Context) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, portMapDiscovery)
	defer cancel()
	m.mu.Lock()
	clients := []upnpClient{}
	if m.upnp != nil {
		clients = append(clients, m.upnp)
	}
	m.mu.Unlock()
	if len(clients) == 0 {
		if c2, _, err := internetgateway2.NewWANIPConnection2ClientsCtx(ctx); err == nil {
			for _, c := range c2 {
				clients = append(clients, c)
			}
		}
		if c1, _, err := internetgateway2.NewWANIPConnection1ClientsCtx(ctx); err == nil {
			for _, c := range c1 {
				clients = append(clients, c)
			}
		}
	}
	if len(clients) == 0 {
		return 0, fmt.Errorf("%w: no NAT-PMP or UPnP-IGD answer", ErrNoPortMapping)
	}
	port := m.local.Port()
	lease := uint32(portMapLease / time.Second)
	var last error
	for _, c := range clients {
		err := c.AddPortMappingCtx(ctx, "", port, "UDP", port, m.local.Addr().String(), true, portMapDesc, lease)
		if err != nil {
			last = err
			continue
		}
		s, err := c.GetExternalIPAddressCtx(ctx)
		ip, perr := netip.ParseAddr(s)
		if err != nil || perr != nil {
			last = fmt.Errorf("external address %q: %w", s, errors.Join(err, perr))
			continue
		}
		m.set(PortMapping{External: netip.AddrPortFrom(ip.Unmap(), port), Protocol: PortMapUPnP}, c)
		return portMapLease, nil
	}
	return 0, fmt.Errorf("%w: %w", ErrNoPortMapping, last)
}

func (m *PortMapper) set(p PortMapping, c upnpClient) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.ok || m.mapping != p {
		m.logger.Info("port mapping", "external", p.External.String(), "protocol", p.Protocol)
	}
	m.mapping, m.ok, m.upnp = p, true, c
}

// unmap removes the mapping, if there is one.
func (m *PortMapper) unmap() {
	m.mu.Lock()
	p, ok, c := m.mapping, m.ok, m.upnp
	m.ok = false
	m.mu.Unlock()
	if !ok {
		return
	}
	port := m.local.Port()
	switch p.Protocol {
	case PortMapNATPMP:
		gw := m.gw
		if !gw.IsValid() {
			var err error
			if gw, err = defaultGateway(); err != nil {
				return
			}
		}
		// Lifetime 0 deletes the mapping (RFC 6886, §3.4).
		_, _ = natpmp.NewClientWithTimeout(net.IP(gw.AsSlice()), portMapTimeout).AddPortMapping("udp", int(port), 0, 0)
	case PortMapUPnP:
		if c != nil {
			ctx, cancel := context.WithTimeout(context.Background(), portMapTimeout)
			defer cancel()
			_ = c.DeletePortMappingCtx(ctx, "", p.External.Port(), "UDP")
		}
	}
}

// defaultGateway returns the IPv4 gateway of the default route (Linux:
// /proc/net/route).
func defaultGateway() (netip.Addr, error) {
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%w: %w", ErrNoPortMapping, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if gw, ok := parseRouteLine(sc.Text()); ok {
			return gw, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("%w: no default route", ErrNoPortMapping)
}

// parseRouteLine returns the gateway of a /proc/net/route line if it is a
// default route with a gateway.
func parseRouteLine(line string) (netip.Addr, bool) {
	f := strings.Fields(line)
	if len(f) < 3 || f[1] != "00000000" {
		return netip.Addr{}, false
	}
	b, err := hex.DecodeString(f[2])
	if err != nil || len(b) != 4 {
		return netip.Addr{}, false
	}
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], binary.LittleEndian.Uint32(b))
	gw := netip.AddrFrom4(a)
	return gw, !gw.IsUnspecified()
}
