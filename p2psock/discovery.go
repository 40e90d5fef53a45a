package p2psock

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/p2psock/p2psock/internal/lan"
)

// Local discovery (Config.LocalDiscovery): nodes of the same network on this
// machine find each other through a registry directory, and on the LAN
// through multicast announcements; see package internal/lan.
const (
	discoveryWait     = 300 * time.Millisecond // Bind waits this long for a LAN answer when it knows nobody
	discoveryAnnounce = 30 * time.Second       // period of LAN announcements
	discoveryRescan   = 5 * time.Second        // period of registry scans
	discoveryRetry    = 30 * time.Second       // an address met is not met again for this long
)

type discovery struct {
	reg  *lan.Registry
	mc   *net.UDPConn // nil if the LAN group could not be joined
	ann  []byte
	net  [8]byte
	wg   sync.WaitGroup
	stop chan struct{}
	ctx  context.Context // cancelled at close: meetings in progress end
	end  context.CancelFunc

	mu    sync.Mutex
	met   map[string]time.Time // address → when it was last met or tried
	heard chan string          // LAN announcers, while Bind waits
}

// startDiscovery registers the node and joins the LAN group. It returns the
// entry points it already knows of.
func (n *Node) startDiscovery() []string {
	d := &discovery{stop: make(chan struct{}), met: make(map[string]time.Time),
		heard: make(chan string, 16), net: lan.NetworkHash(n.cfg.Network)}
	d.ctx, d.end = context.WithCancel(context.Background())
	d.ann = lan.Announcement{Network: d.net, ID: n.ID()}.Append(nil)
	n.mu.Lock()
	n.disc = d
	n.mu.Unlock()
	if ap, ok := n.localAddrPort(); ok {
		reg, err := lan.Register(n.cfg.discoveryDir, n.cfg.Network, ap)
		if err != nil {
			n.cfg.Logger.Debug("local discovery: no registry", "err", err)
		}
		d.reg = reg
	}
	if !n.cfg.MachineOnlyDiscovery {
		mc, err := lan.Listen()
		if err != nil {
			n.cfg.Logger.Debug("local discovery: no LAN announcements", "err", err)
		} else {
			d.mc = mc
			d.wg.Add(1)
			go func() {
				defer d.wg.Done()
				n.listenAnnouncements(d, mc)
			}()
		}
	}
	var entries []string
	if d.reg != nil {
		entries = d.reg.Peers()
	}
	if len(entries) == 0 && d.mc != nil && len(n.cfg.Bootstrap) == 0 {
		n.announce(d)
		t := time.NewTimer(discoveryWait)
		select {
		case a := <-d.heard:
			entries = append(entries, a)
		case <-t.C:
		}
		t.Stop()
	}
	d.mu.Lock()
	d.heard = nil
	d.mu.Unlock()
	return entries
}

// runDiscovery keeps meeting the nodes the registry and the LAN reveal.
func (n *Node) runDiscovery(d *discovery) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		scan := time.NewTicker(discoveryRescan)
		defer scan.Stop()
		ann := time.NewTicker(discoveryAnnounce)
		defer ann.Stop()
		if d.mc != nil {
			n.announce(d)
		}
		for {
			select {
			case <-d.stop:
				return
			case <-scan.C:
				if d.reg != nil {
					for _, a := range d.reg.Peers() {
						n.meet(d, a)
					}
				}
			case <-ann.C:
				if d.mc != nil {
					n.announce(d)
				}
			}
		}
	}()
}

// maxMet bounds the addresses discovery remembers meeting.
const maxMet = 1024

// meet links to a discovered address, unless it was met recently.
func (n *Node) meet(d *discovery, addr string) {
	if d.markMet(addr) {
		n.meetNow(d, addr)
	}
}

// meetNow links to addr in the background.
func (n *Node) meetNow(d *discovery, addr string) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		ctx, cancel := context.WithTimeout(d.ctx, 5*time.Second)
		defer cancel()
		if err := n.ov.Meet(ctx, addr); err != nil {
			n.cfg.Logger.Debug("local discovery: meeting failed", "addr", addr, "err", err)
		}
	}()
}

// markMet records that addr is being met now; false if it was met (or
// tried) recently.
func (d *discovery) markMet(addr string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	if t, ok := d.met[addr]; ok && now.Sub(t) < discoveryRetry {
		return false
	}
	if len(d.met) >= maxMet {
		for a, t := range d.met {
			if now.Sub(t) >= discoveryRetry {
				delete(d.met, a)
			}
		}
	}
	d.met[addr] = now
	return true
}

func (n *Node) announce(d *discovery) {
	n.sock.WriteTo(d.ann, lan.Group)
}

// listenAnnouncements reads the LAN group: a node of this network that is
// not this one is met, and answered with this node's announcement.
func (n *Node) listenAnnouncements(d *discovery, mc *net.UDPConn) {
	buf := make([]byte, 512)
	var lastAnswer time.Time
	for {
		k, from, err := mc.ReadFromUDP(buf)
		if err != nil {
			return
		}
		a, err := lan.Parse(buf[:k])
		if err != nil || a.Network != d.net || a.ID == n.ID() {
			continue
		}
		addr := unmapAddr(from).String()
		d.mu.Lock()
		heard := d.heard
		d.mu.Unlock()
		if heard != nil {
			select {
			case heard <- addr:
			default:
			}
			continue
		}
		if !d.markMet(addr) {
			continue
		}
		if time.Since(lastAnswer) > time.Second {
			lastAnswer = time.Now()
			n.announce(d)
		}
		n.meetNow(d, addr)
	}
}

func (n *Node) closeDiscovery() {
	n.mu.Lock()
	d := n.disc
	n.disc = nil
	n.mu.Unlock()
	if d == nil {
		return
	}
	close(d.stop)
	d.end()
	if d.mc != nil {
		d.mc.Close()
	}
	d.wg.Wait()
	if d.reg != nil {
		d.reg.Close()
	}
}

// localAddrPort is the address other processes on this machine reach the
// node at: its socket's, with loopback for an unspecified IP.
func (n *Node) localAddrPort() (netip.AddrPort, bool) {
	ua := n.UDPAddr()
	if ua == nil {
		return netip.AddrPort{}, false
	}
	ap := unmapAddr(ua)
	if ap.Addr().IsUnspecified() {
		// An IPv4 or dual-stack wildcard socket (Go's default) takes
		// 127.0.0.1, which every node can reach.
		ap = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), ap.Port())
	}
	return ap, true
}

func unmapAddr(ua *net.UDPAddr) netip.AddrPort {
	ap := ua.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
