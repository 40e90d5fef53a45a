package lan

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/p2psock/p2psock/internal/lifecycle"
)

// Local discovery (docs/PROTOCOL.md, §13): a Discovery runs a node's side of
// it, the registry entry and the LAN announcements, and meets the nodes they
// reveal.
const (
	discoveryWait = 300 * time.Millisecond // Start waits this long for a LAN answer when it knows nobody
	announceEvery = 30 * time.Second       // period of LAN announcements
	// RescanEvery is the period of registry scans.
	RescanEvery = 5 * time.Second
	retryAfter  = 30 * time.Second // an address met is not met again for this long
	meetWait    = 5 * time.Second  // bound on one meeting
	maxMet      = 1024             // addresses remembered as met
)

// Config configures a Discovery.
type Config struct {
	// Network is the network's name; ID is the node's.
	Network string
	ID      [32]byte
	// Addr is the node's socket address (an unspecified IP stands for
	// loopback in the registry); the zero value registers nothing.
	Addr netip.AddrPort
	// Dir is the registry's directory; "" is DefaultDir.
	Dir string
	// MachineOnly keeps discovery to the registry: no LAN announcements are
	// sent or heard.
	MachineOnly bool
	// WaitForLAN makes Start announce the node and wait a moment for an
	// answer when the registry names nobody (the node has no other entry
	// point).
	WaitForLAN bool
	// Hidden makes the node find the others without being found: it reads
	// the registry and hears announcements, but neither registers nor
	// announces itself (a light client, which is no entry point).
	Hidden bool
	// Announce sends an announcement to Group from the node's own socket.
	Announce func(b []byte)
	// Meet links the node to the node at addr (the overlay's Meet).
	Meet func(ctx context.Context, addr string) error
	// Logger receives debug logs; nil means none.
	Logger *slog.Logger
}

// Discovery is a node's local discovery in progress. Its methods are safe
// for concurrent use.
type Discovery struct {
	cfg   Config
	reg   *Registry    // nil without a registry
	mc    *net.UDPConn // nil if the LAN group could not be joined
	ann   []byte
	net   [8]byte
	scope *lifecycle.Scope

	closeReg sync.Once

	mu    sync.Mutex
	met   map[string]time.Time // address → when it was last met or tried
	heard chan string          // LAN announcers, while Start waits
}

// Start registers the node and joins the LAN group, and returns the entry
// points it already knows of: the registry's, or, with WaitForLAN and
// nobody in the registry, the first node of the network that answered its
// announcement. Discovery that cannot register or listen goes on without.
// Call Run once the node has joined, and Close at the end.
func Start(cfg Config) (*Discovery, []string) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Discovery{cfg: cfg, scope: lifecycle.NewScope(), met: make(map[string]time.Time),
		heard: make(chan string, 16), net: NetworkHash(cfg.Network)}
	d.ann = Announcement{Network: d.net, ID: cfg.ID}.Append(nil)
	if cfg.Hidden {
		cfg.Announce = func([]byte) {}
		d.cfg = cfg
		d.reg = OpenRegistry(cfg.Dir, cfg.Network)
	} else if cfg.Addr.IsValid() {
		reg, err := Register(cfg.Dir, cfg.Network, cfg.Addr)
		if err != nil {
			cfg.Logger.Debug("local discovery: no registry", "err", err)
		}
		d.reg = reg
	}
	if !cfg.MachineOnly {
		mc, err := Listen()
		if err != nil {
			cfg.Logger.Debug("local discovery: no LAN announcements", "err", err)
		} else {
			d.mc = mc
			d.scope.Go(func(context.Context) { d.listen(mc) })
		}
	}
	entries := d.Peers()
	if len(entries) == 0 && d.mc != nil && cfg.WaitForLAN {
		d.cfg.Announce(d.ann)
		t := time.NewTimer(discoveryWait)
		select {
		case a := <-d.heard:
			entries = append(entries, a)
		case <-t.C:
		case <-d.scope.Done():
		}
		t.Stop()
	}
	d.mu.Lock()
	d.heard = nil
	d.mu.Unlock()
	return d, entries
}

// Peers returns the addresses of the other nodes in the registry.
func (d *Discovery) Peers() []string {
	if d.reg == nil {
		return nil
	}
	return d.reg.Peers()
}

// Run keeps meeting the nodes the registry and the LAN reveal, in the
// background, until Close: it announces the node at once and every 30 s,
// and reads the registry every RescanEvery.
func (d *Discovery) Run() {
	d.scope.Go(func(ctx context.Context) {
		scan := time.NewTicker(RescanEvery)
		defer scan.Stop()
		ann := time.NewTicker(announceEvery)
		defer ann.Stop()
		if d.mc != nil {
			d.cfg.Announce(d.ann)
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-scan.C:
				for _, a := range d.Peers() {
					d.meet(a)
				}
			case <-ann.C:
				if d.mc != nil {
					d.cfg.Announce(d.ann)
				}
			}
		}
	})
}

// meet links to a discovered address in the background, unless it was met
// recently.
func (d *Discovery) meet(addr string) {
	if d.markMet(addr) {
		d.meetNow(addr)
	}
}

// markMet records that addr is being met now; false if it was met (or
// tried) recently.
func (d *Discovery) markMet(addr string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	if t, ok := d.met[addr]; ok && now.Sub(t) < retryAfter {
		return false
	}
	if len(d.met) >= maxMet {
		for a, t := range d.met {
			if now.Sub(t) >= retryAfter {
				delete(d.met, a)
			}
		}
	}
	d.met[addr] = now
	return true
}

// listen reads the LAN group: a node of this network that is not this one
// is met, and answered with this node's announcement (at most once a
// second). While Start waits, announcers are only reported to it.
func (d *Discovery) listen(mc *net.UDPConn) {
	buf := make([]byte, 512)
	var lastAnswer time.Time
	for {
		k, from, err := mc.ReadFromUDP(buf)
		if err != nil {
			return
		}
		a, err := Parse(buf[:k])
		if err != nil || a.Network != d.net || a.ID == d.cfg.ID {
			continue
		}
		addr := unmap(from).String()
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
			d.cfg.Announce(d.ann)
		}
		d.meetNow(addr)
	}
}

// meetNow is meet for an address already marked as met.
func (d *Discovery) meetNow(addr string) {
	d.scope.Go(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, meetWait)
		defer cancel()
		if err := d.cfg.Meet(ctx, addr); err != nil {
			d.cfg.Logger.Debug("local discovery: meeting failed", "addr", addr, "err", err)
		}
	})
}

// Close stops announcing and scanning, closes the LAN listener, waits for
// the meetings in progress and removes the node's registry entry. It is
// idempotent.
func (d *Discovery) Close() {
	d.scope.Stop()
	if d.mc != nil {
		d.mc.Close()
	}
	d.scope.Close()
	d.closeReg.Do(func() {
		if d.reg != nil {
			d.reg.Close()
		}
	})
}

// LocalAddrPort is the address other processes on this machine reach a
// node whose socket is ua at: its address, with loopback for an
// unspecified IP.
func LocalAddrPort(ua *net.UDPAddr) netip.AddrPort {
	if ua == nil {
		return netip.AddrPort{}
	}
	ap := unmap(ua)
	if ap.Addr().IsUnspecified() {
		// An IPv4 or dual-stack wildcard socket (Go's default) takes
		// 127.0.0.1, which every node can reach.
		ap = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), ap.Port())
	}
	return ap
}

func unmap(ua *net.UDPAddr) netip.AddrPort {
	ap := ua.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
