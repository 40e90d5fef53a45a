package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/p2psock/p2psock/dht"
	"github.com/p2psock/p2psock/p2psock"
)

// Options say how a program's node joins its network: what its global flags
// set.
type Options struct {
	// Network is the network's name; "" is p2psock.DefaultNetwork.
	Network string
	// Bootstrap lists entry points, "host:port" of nodes in the network.
	Bootstrap []string
	// JoinOnly makes starting the node fail when no entry point of
	// Bootstrap answers, instead of starting a new network.
	JoinOnly bool
	// Relays lists TURN relays, "turn://user:password@host:port".
	Relays []string
	// ForceRelay makes every connection go through a relay.
	ForceRelay bool
	// Listen is the UDP "host:port" to bind; "" is every interface, a free
	// port.
	Listen string
	// MachineOnly keeps local discovery to this machine: the node neither
	// sends nor listens for LAN announcements (tests set it).
	MachineOnly bool
	// Logger receives the node's logs; nil logs nothing.
	Logger *slog.Logger
}

// Config returns the configuration of a node with identity id that joins as
// o says. The node finds the other nodes of its network on this machine
// and on the LAN (Config.LocalDiscovery): with no Bootstrap, the first node
// starts the network and the next ones join it.
func (o Options) Config(id *p2psock.Identity) p2psock.Config {
	return p2psock.Config{
		Identity:             id,
		ListenAddr:           o.Listen,
		Network:              o.Network,
		Bootstrap:            o.Bootstrap,
		JoinOnly:             o.JoinOnly,
		Relays:               o.Relays,
		ForceRelay:           o.ForceRelay,
		LocalDiscovery:       true,
		MachineOnlyDiscovery: o.MachineOnly,
		Logger:               o.Logger,
	}
}

// StartNode creates a node from cfg, attaches a DHT to it (from dcfg) and
// binds the node under ctx. The DHT starts before Bind, so that the node
// serves the records it becomes responsible for at once. The caller closes
// the DHT, then the node; on error, nothing is left open.
func StartNode(ctx context.Context, cfg p2psock.Config, dcfg dht.Config) (*p2psock.Node, *dht.DHT, error) {
	n, err := p2psock.NewNode(cfg)
	if err != nil {
		return nil, nil, err
	}
	d, err := dht.New(n, dcfg)
	if err != nil {
		n.Close()
		return nil, nil, err
	}
	if err := n.Bind(ctx); err != nil {
		d.Close()
		n.Close()
		return nil, nil, fmt.Errorf("joining the network: %w", err)
	}
	return n, d, nil
}

// NewLogger returns a logger that writes text to w, for a program run with
// -v given verbosity times: nil (no logging) for 0, info messages for 1,
// debug messages too for 2 or more.
func NewLogger(w io.Writer, verbosity int) *slog.Logger {
	if verbosity <= 0 {
		return nil
	}
	level := slog.LevelInfo
	if verbosity > 1 {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}
